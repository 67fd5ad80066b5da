// The console with some life in it: receipts posted through a till key, then the
// dashboard (charts drawn from the vendored uPlot), a member found by phone, the member's
// page, a receipt refunded after confirming, and the programme form's validation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { shared, kopilka, browser, newPage, shot } from "../lib.mjs";

test("dashboard, members, receipts and programme", async () => {
  const server = shared();
  const email = `tour-${Date.now()}@e2e.test`;
  const out = JSON.parse(kopilka(server, ["tenant", "create", "--name", "Tour Market", "--template", "retail", "--owner-email", email, "--json"]));
  const admin = async (method, path, body) => {
    const r = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${out.api_key}`, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    return r.json();
  };
  const store = await admin("POST", "/stores", { code: "MAIN", name: "Main street 1" });
  const names = ["Anna Smirnova", "Boris Ivanov", "Clara Kuznetsova", "Denis Popov"];
  const members = [];
  for (let i = 0; i < names.length; i++) {
    members.push(await admin("POST", "/members", { name: names[i], phone: `+7916000000${i}`, email: `m${i}@tour.test`, consents: { personal_data: true, marketing: i % 2 === 0 } }));
  }
  await admin("POST", `/members/${members[0].id}/adjustments`, { points: 500, reason: "welcome bonus" });
  const day = 86400;
  const now = Math.floor(Date.now() / 1000);
  let n = 0;
  for (let d = 20; d >= 0; d -= 1) {
    for (let k = 0; k < 1 + (d % 3); k++) {
      const m = members[(d + k) % members.length];
      const anonymous = (d + k) % 4 === 3;
      const at = new Date((now - d * day - k * 600) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
      const body = {
        receipt_id: `T-${++n}`, till_id: "T1", store_id: store.id, occurred_at: at,
        items: [
          { line_no: 1, sku: "MILK", name: "Milk 1 l", category: "dairy", quantity: 2, unit_price_minor: 8990 },
          { line_no: 2, sku: "COFFEE", name: "Coffee beans", category: "coffee", quantity: 1, unit_price_minor: 54900 + d * 1000 },
        ],
      };
      if (!anonymous) {
        body.member = { member_id: m.id };
        if (m === members[0] && d % 2 === 0) body.redeem_points = 40;
      }
      const r = await admin("POST", "/pos/checkout", body);
      assert.ok(r.status === "committed", JSON.stringify(r));
    }
  }

  const b = await browser();
  try {
    const page = await newPage(b);
    page.on("dialog", (d) => d.accept());
    await page.goto(out.login_url);
    await page.getByTestId("link-login").click();
    await page.fill("#password", "tour password 123");
    await page.fill("#password2", "tour password 123");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");
    // Charts are drawn (uPlot makes a canvas).
    await page.waitForSelector("[data-testid=chart-receipts] canvas");
    await page.waitForSelector("[data-testid=chart-points] canvas");
    assert.equal(await page.getByTestId("kpi-members").innerText(), "4");
    await shot(page, "admin-dashboard");

    // A member by phone (a POST: nothing personal in the address bar).
    await page.goto(`${server.url}/admin/members`);
    await page.fill("#q", "8 916 000-00-00");
    await page.click("form[role=search] button");
    await page.waitForSelector(`a[href="/admin/members/${members[0].id}"]`);
    // htmx swapped the results in place (with the CSRF header from <body hx-headers>).
    assert.equal(new URL(page.url()).pathname, "/admin/members");
    await page.click(`a[href="/admin/members/${members[0].id}"]`);
    await page.waitForURL(`**/admin/members/${members[0].id}`);
    await page.waitForSelector("[data-testid=ledger]");
    await shot(page, "admin-member");

    // A receipt, refunded after confirming.
    await page.goto(`${server.url}/admin/receipts`);
    await shot(page, "admin-receipts");
    await page.fill("#receipt_id", "T-1");
    await page.click("form[role=search] button");
    await page.click("table[data-testid=receipts] a >> nth=0");
    await page.waitForSelector("[data-testid=lines]");
    await page.fill("[data-testid=refund-qty-1]", "1");
    await page.check("[data-testid=refund-confirm]");
    await page.getByTestId("refund").click();
    await page.waitForSelector("[data-testid=refunds]");
    assert.match(await page.getByTestId("receipt-status").innerText(), /partly refunded/);
    await shot(page, "admin-receipt");

    // The programme form says what is wrong next to the field.
    await page.goto(`${server.url}/admin/programme`);
    await page.fill("input[name='redeem.max_share_bp']", "150");
    await page.getByTestId("save-programme").click();
    assert.match(await page.getByTestId("error-redeem.max_share_bp").innerText(), /from 0% to 100%/);
    await shot(page, "admin-programme-error");
  } finally {
    await b.close();
  }
});
