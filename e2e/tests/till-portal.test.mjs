// The cashier terminal and the member portal, end to end, on a private server whose SMS
// adapter (KOPILKA_SMS_URL) points at a small local receiver started here:
//   1. a cashier opens the till with a till key, finds the member by card number and by
//      the QR code (a photo fed to the reader, then Chromium's fake camera playing a QR
//      video), builds a receipt, spends points, checks out, prints, and refunds a line;
//   2. the member logs in to the portal with the code from the SMS and sees the balance
//      after the cashier's checkout;
//   3. the member switches the portal's language;
//   4. the portal on a 360-px-wide phone screen.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, kopilka, browser, newPage, shot } from "../lib.mjs";

const PHONE = "+79991234567";
let server, sms, messages = [];
let shop, storeId, tillKey, member, receiptId, qrPng;

/// A local SMS provider: POST {"to", "text"} is kept in `messages`.
function startSms() {
  return new Promise((resolve) => {
    const s = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => { body += d; });
      req.on("end", () => {
        try { messages.push(JSON.parse(body)); } catch { /* not JSON */ }
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

async function api(method, path, body) {
  const r = await fetch(`${server.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${shop.api_key}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return r.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text;
}

async function balance() {
  return (await api("GET", `/members/${member.id}/balance`)).available;
}

before(async () => {
  sms = await startSms();
  server = await startServer({ env: { KOPILKA_SMS_URL: `http://127.0.0.1:${sms.address().port}/sms` } });
  shop = JSON.parse(kopilka(server, ["tenant", "create", "--name", "Лавка «Пример»", "--template", "retail", "--json"]));
  storeId = (await api("POST", "/stores", { code: "M1", name: "Main street" })).id;
  tillKey = (await api("POST", "/api-keys", { role: "pos", store_id: storeId, till_id: "T1", label: "tablet" })).key;
  member = await api("POST", "/members", { phone: PHONE, name: "Anna", consents: { personal_data: true } });
  // 400 points to spend (1 point per 10.00).
  await api("POST", "/pos/checkout", {
    receipt_id: "SEED-1", store_id: storeId, till_id: "T0", member: { member_id: member.id },
    items: [{ sku: "SEED", quantity: 1, unit_price_minor: 400000 }],
  });
  const r = await fetch(`${server.url}/api/v1/members/${member.id}/card.png?format=qr`, { headers: { authorization: `Bearer ${shop.api_key}` } });
  assert.equal(r.status, 200);
  qrPng = Buffer.from(await r.arrayBuffer());
});

after(async () => {
  await server?.stop();
  sms?.close();
});

test("a cashier opens the till, sells with points, prints and refunds", async () => {
  const b = await browser();
  try {
    const page = await newPage(b);
    page.on("dialog", (d) => d.accept());
    await page.goto(`${server.url}/till`);
    await page.waitForURL("**/till/login");
    await shot(page, "till-login");
    await page.fill("#key", "kop_not_a_key");
    await page.getByTestId("till-login").click();
    assert.equal(await page.getByTestId("login-error").count(), 1);
    await page.fill("#key", tillKey);
    await page.getByTestId("till-login").click();
    await page.waitForURL((u) => u.pathname === "/till");
    assert.match(await page.getByTestId("place").innerText(), /Main street · T1/);
    assert.ok(!(await page.content()).includes(tillKey), "the key is in no page");

    // The QR code from a photo.
    await page.getByTestId("scan-file").setInputFiles({ name: "card.png", mimeType: "image/png", buffer: qrPng });
    await page.getByTestId("member").waitFor();
    assert.match(await page.getByTestId("member").innerText(), new RegExp(member.card_number));
    assert.match(await page.getByTestId("member").innerText(), /QR/);
    // Then by card number.
    await page.locator("form[action='/till/member/clear'] button").click();
    await page.fill("#card", member.card_number);
    await page.getByTestId("find-card").click();
    await page.getByTestId("member").waitFor();
    assert.equal(await page.getByTestId("member-points").innerText(), "400");

    // The receipt: two lines.
    for (const [sku, name, category, qty, price] of [["MILK-1", "Milk 1 l", "dairy", "2", "89.90"], ["CHS-2", "Cheese", "dairy", "0.5", "640"]]) {
      await page.fill("#sku", sku);
      await page.fill("#name", name);
      await page.fill("#category", category);
      await page.fill("#quantity", qty);
      await page.fill("#price", price);
      await page.getByTestId("add-line").click();
      await page.waitForLoadState("load");
    }
    assert.equal(await page.locator("[data-testid=lines] tbody tr").count(), 2);
    assert.equal(await page.getByTestId("lines-total").innerText(), "₽499.80");
    receiptId = await page.getByTestId("receipt-id").innerText();

    // Quote with every point allowed, then with some.
    await page.getByTestId("spend-all").check();
    await page.getByTestId("quote").click();
    await page.getByTestId("quote-result").waitFor();
    assert.match(await page.getByTestId("quote-points").innerText(), /^249 =/);
    await page.getByTestId("spend-some").check();
    await page.getByTestId("spend-points").fill("150");
    await page.getByTestId("quote").click();
    await page.getByTestId("quote-result").waitFor();
    assert.match(await page.getByTestId("quote-points").innerText(), /^150 =/);
    assert.equal(await page.getByTestId("quote-payable").innerText(), "₽349.80");
    await shot(page, "till-sale-quote");
    // Reserve, then check out.
    await page.getByTestId("reserve").click();
    await page.getByTestId("reserved").waitFor();
    await page.getByTestId("checkout").click();
    await page.waitForURL("**/till/receipts/**");
    assert.equal(await page.getByTestId("slip-id").innerText(), receiptId);
    assert.match(await page.getByTestId("slip-points-spent").innerText(), /^150 =/);
    assert.equal(await page.getByTestId("slip-payable").innerText(), "₽349.80");
    await shot(page, "till-receipt");
    await page.emulateMedia({ media: "print" });
    assert.equal(await page.getByTestId("print").isVisible(), false, "buttons do not print");
    assert.equal(await page.locator(".topbar").isVisible(), false);
    await shot(page, "till-receipt-print");
    await page.emulateMedia({ media: "screen" });
    const earned = Number(await page.getByTestId("slip-points-earned").innerText());
    assert.ok(earned > 0);
    assert.equal(await balance(), 400 - 150 + earned);

    // Refund one milk by receipt id.
    await page.getByTestId("nav-refund").click();
    await page.fill("#receipt_id", receiptId);
    await page.getByTestId("refund-open").click();
    await page.waitForURL("**/refund");
    await page.getByTestId("refund-qty-1").fill("1");
    await page.getByTestId("refund-submit").click();
    await page.getByTestId("refund-done").waitFor();
    assert.match(await page.getByTestId("refund-status").innerText(), /partly refunded/);
    await shot(page, "till-refund");
  } finally {
    await b.close();
  }
});

test("the till reads a QR code from the camera", async () => {
  // A QR "video" for Chromium's fake camera: the card's QR on white, as MJPEG frames.
  const dir = mkdtempSync(join(tmpdir(), "kopilka-qr-"));
  const render = await browser();
  let frame;
  try {
    const p = await newPage(render);
    await p.setViewportSize({ width: 640, height: 480 });
    await p.setContent(`<body style="margin:0;background:#fff;display:flex;align-items:center;justify-content:center;height:480px">
      <img src="data:image/png;base64,${qrPng.toString("base64")}" style="width:400px;height:400px;image-rendering:pixelated"></body>`);
    frame = await p.screenshot({ type: "jpeg", quality: 95 });
  } finally {
    await render.close();
  }
  const video = join(dir, "qr.mjpeg");
  writeFileSync(video, Buffer.concat(Array(30).fill(frame)));
  const b = await browser({ args: ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", `--use-file-for-fake-video-capture=${video}`] });
  try {
    const page = await newPage(b);
    await page.context().grantPermissions(["camera"], { origin: server.url });
    await page.goto(`${server.url}/till/login`);
    await page.fill("#key", tillKey);
    await page.getByTestId("till-login").click();
    await page.waitForURL((u) => u.pathname === "/till");
    if (await page.getByTestId("member").count()) {
      await page.locator("form[action='/till/member/clear'] button").click();
    }
    await page.getByTestId("scan").click();
    await page.getByTestId("member").waitFor({ timeout: 20000 });
    assert.match(await page.getByTestId("member").innerText(), new RegExp(member.card_number));
    assert.match(await page.getByTestId("member").innerText(), /QR/);
  } finally {
    await b.close();
  }
});

test("the member logs in with the SMS code and sees the new balance", async () => {
  const b = await browser();
  try {
    const page = await newPage(b, { locale: "en-US" });
    await page.goto(`${server.url}/m/${shop.slug}`);
    await page.waitForURL("**/login");
    await shot(page, "portal-login");
    await page.fill("#contact", "+7 999 123-45-67");
    await page.getByTestId("send-code").click();
    await page.getByTestId("code-sent").waitFor();
    assert.ok(!page.url().includes("999"), "no phone number in the URL");
    const msg = messages.filter((m) => m.to === PHONE).at(-1);
    assert.ok(msg, "the SMS receiver got the code");
    const code = msg.text.slice(0, 6);
    assert.match(code, /^\d{6}$/);
    await page.fill("#code", code);
    await page.getByTestId("check-code").click();
    await page.waitForURL((u) => u.pathname === `/m/${shop.slug}`);
    const expected = await balance();
    assert.equal(await page.getByTestId("balance").innerText(), String(expected));
    assert.equal(await page.getByTestId("card-number").innerText(), member.card_number);
    const qr = await page.getByTestId("qr").evaluate((img) => img.complete && img.naturalWidth > 0);
    assert.ok(qr, "the QR code is shown");
    await shot(page, "portal-card-desktop");
    await page.getByTestId("nav-history").click();
    assert.match(await page.getByTestId("history").innerText(), new RegExp(receiptId));
    await shot(page, "portal-history");
    await page.getByTestId("nav-offers").click();
    await shot(page, "portal-offers");
    await page.getByTestId("nav-consents").click();
    await page.getByTestId("consent-marketing").check();
    await page.getByTestId("save-consents").click();
    assert.equal(await page.getByTestId("consent-marketing").isChecked(), true);
    const m = await api("GET", `/members/${member.id}`);
    assert.equal(m.consents.marketing.granted, true);
    assert.equal(m.consents.marketing.source, "portal");
    await page.getByTestId("nav-rules").click();
    assert.match(await page.getByTestId("rules").innerText(), /You earn 1 point for every ₽10.00 you pay/);
    await shot(page, "portal-rules");
  } finally {
    await b.close();
  }
});

test("the member switches the portal to Russian and back", async () => {
  const b = await browser();
  try {
    const page = await newPage(b, { locale: "en-US" });
    await page.goto(`${server.url}/m/${shop.slug}/rules`);
    assert.match(await page.locator("h1").innerText(), /Programme rules/);
    await page.getByTestId("lang-ru").click();
    await page.waitForLoadState("load");
    assert.equal(await page.locator("html").getAttribute("lang"), "ru");
    assert.match(await page.locator("h1").innerText(), /Правила программы/);
    assert.match(await page.getByTestId("rules").innerText(), /10,00\s₽/);
    await shot(page, "portal-rules-ru");
    await page.getByTestId("lang-en").click();
    await page.waitForLoadState("load");
    assert.match(await page.locator("h1").innerText(), /Programme rules/);
  } finally {
    await b.close();
  }
});

test("the portal fits a 360-px-wide phone", async () => {
  const b = await browser();
  try {
    const page = await newPage(b, { locale: "ru-RU", phone: true });
    await page.goto(`${server.url}/m/${shop.slug}/login`);
    await page.fill("#contact", PHONE);
    await page.getByTestId("send-code").click();
    await page.getByTestId("code-sent").waitFor();
    const code = messages.filter((m) => m.to === PHONE).at(-1).text.slice(0, 6);
    await page.fill("#code", code);
    await page.getByTestId("check-code").click();
    await page.waitForURL((u) => u.pathname === `/m/${shop.slug}`);
    assert.match(await page.locator("h2").first().innerText(), /Скоро сгорят|Уровень/);
    for (const path of ["", "/history", "/offers", "/consents", "/rules"]) {
      await page.goto(`${server.url}/m/${shop.slug}${path}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `${path || "/"} is ${width}px wide`);
    }
    await page.goto(`${server.url}/m/${shop.slug}`);
    const qr = await page.getByTestId("qr").boundingBox();
    assert.ok(qr.width >= 280, `the QR code is ${qr.width}px wide`);
    await shot(page, "portal-card-phone");
  } finally {
    await b.close();
  }
});
