// First run: an empty server, the setup page, a programme from a template, a store and a
// till key made in the console; the key then works against the POS API.

import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, SETUP_CODE, browser, newPage, shot } from "../lib.mjs";

test("first-run setup from a template to a working till key", async () => {
  const server = await startServer();
  const b = await browser();
  try {
    const page = await newPage(b);
    await page.goto(`${server.url}/admin/login`);
    await page.click("text=First run: set up the programme");
    await page.waitForURL("**/admin/setup");
    await page.fill("#code", SETUP_CODE);
    await page.fill("#name", "Corner Café");
    await page.check("input[name=template][value=cafe]");
    await page.fill("#time_zone", "Europe/Moscow");
    await page.fill("#email", "owner@corner.test");
    await page.fill("#password", "a long enough secret");
    await page.fill("#password2", "a long enough secret");
    await shot(page, "admin-setup");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");
    assert.match(await page.getByTestId("who").innerText(), /owner@corner\.test/);

    // The programme is the cafe template.
    await page.goto(`${server.url}/admin/programme`);
    assert.equal(await page.inputValue("input[name='expiry.days']"), "90");
    assert.equal(await page.inputValue("input[name='tiers[1].code']"), "regular");

    // A store, then a till key for it.
    await page.goto(`${server.url}/admin/stores`);
    await page.fill("#code", "CAFE-1");
    await page.fill("#name", "Pokrovka 12, Moscow");
    await page.getByTestId("add-store").click();
    await page.waitForURL("**/admin/stores");
    await page.fill("#till_id", "T1");
    await page.fill("#label", "counter");
    await page.getByTestId("create-key").click();
    const key = (await page.getByTestId("new-key-value").innerText()).trim();
    assert.match(key, /^kop_[0-9a-f]{64}$/);
    await shot(page, "admin-stores-new-key");

    // The key works at the till: enrol a member, quote and check out a receipt.
    const api = async (path, body) => {
      const r = await fetch(`${server.url}/api/v1${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.json() };
    };
    const member = await api("/members", { phone: "+79161234567", consents: { personal_data: true } });
    assert.equal(member.status, 201, JSON.stringify(member.body));
    const receipt = {
      receipt_id: "E2E-1",
      member: { card_number: member.body.card_number },
      items: [{ sku: "LATTE", category: "coffee", quantity: 2, unit_price_minor: 25000 }],
    };
    const quote = await api("/pos/quote", receipt);
    assert.equal(quote.status, 200, JSON.stringify(quote.body));
    assert.equal(quote.body.till_id, "T1");
    const checkout = await api("/pos/checkout", receipt);
    assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
    assert.equal(checkout.body.points_earned, 50);

    // The dashboard counts it.
    await page.goto(`${server.url}/admin`);
    assert.equal(await page.getByTestId("kpi-members").innerText(), "1");
    assert.equal(await page.getByTestId("kpi-issued").innerText(), "50");
  } finally {
    await b.close();
    await server.stop();
  }
});
