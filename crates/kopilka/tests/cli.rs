//! The command line, run as a user would: `serve`, `tenant create` while serving,
//! `demo`, `import members`, `check`, `migrate` — on SQLite and PostgreSQL.

mod common;

use common::{BIN, database as fresh_database, kopilka, serve, stdout};
use serde_json::{Value, json};
use std::process::Command;

async fn database(backend: &str) -> common::TestDb {
    fresh_database(backend, "kc").await
}

async fn tenant_create_while_serving(backend: &str) {
    let db = database(backend).await;
    let server = serve(&db).await;
    let url = server.url.clone();
    let out = kopilka(&db, &["tenant", "create", "--name", "Кофейня Ромашка", "--template", "cafe", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    let v: Value = serde_json::from_str(line.trim()).expect("json");
    assert_eq!(v["slug"], "kofeynya-romashka");
    let keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["api_key", "slug", "tenant_id"]);
    let key = v["api_key"].as_str().expect("key");
    // The key works against the running server at once.
    let c = reqwest::Client::new();
    let p: Value = c.get(format!("{url}/api/v1/program")).bearer_auth(key).send().await.expect("get").json().await.expect("json");
    assert_eq!(p["version"], 1);
    assert_eq!(p["expiry"], json!({"policy": "rolling_days", "days": 90}), "cafe template");
    // An explicit slug that is taken is refused.
    let again = kopilka(&db, &["tenant", "create", "--name", "Other", "--slug", "kofeynya-romashka", "--json"]);
    assert!(!again.status.success());
}

async fn demo_import_check(backend: &str) {
    let db = database(backend).await;
    let out = kopilka(&db, &["demo", "--members", "40", "--receipts", "400"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("created the demo tenant: 40 members, 400 receipts"), "{text}");
    assert!(text.contains("/admin/login/link/") && text.contains("owner@demo.kopilka.test"), "a console link: {text}");
    assert!(text.contains("admin key: kop_") && text.contains("pos key:   kop_"), "{text}");
    // A second run keeps the tenant and prints fresh keys.
    let again = stdout(&kopilka(&db, &["demo"]));
    assert!(again.contains("already exists") && again.contains("admin key: kop_"), "{again}");

    let check = kopilka(&db, &["check"]);
    assert!(check.status.success(), "{}", stdout(&check));
    assert!(stdout(&check).contains("checked 40 members: 0 differences"), "{}", stdout(&check));

    // Import: one bad row rejects the whole file.
    let dir = std::env::temp_dir().join("kopilka-tests");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join(format!("bad-{}.csv", kopilka_store::new_id()));
    std::fs::write(
        &bad,
        "card_number,phone,email,name,consent_personal_data,points,points_expires_at\n\
         12345678,+79001112233,a@example.com,Anna,true,500,2099-01-01\n\
         12,+79001112244,b@example.com,Boris,true,100,\n\
         87654321,not-a-phone,c@example.com,Clara,maybe,-5,\n",
    )
    .expect("write");
    let out = kopilka(&db, &["import", "members", bad.to_str().expect("path"), "--tenant", "demo"]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("row 2:") && text.contains("row 3:") && !text.contains("row 1:"), "{text}");

    let good = dir.join(format!("good-{}.csv", kopilka_store::new_id()));
    std::fs::write(
        &good,
        "card_number,phone,email,name,consent_personal_data,consent_marketing,points,points_expires_at\n\
         12345678,+79001112233,a@example.com,Anna,true,false,500,2099-01-01\n\
         4000000000017,,b@example.com,Boris,yes,no,0,\n",
    )
    .expect("write");
    let out = kopilka(&db, &["import", "members", good.to_str().expect("path"), "--tenant", "demo"]);
    assert!(out.status.success(), "{} {}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("imported 2 members with 500 points"), "{}", stdout(&out));
    // Importing the same file again clashes with the members now present.
    let out = kopilka(&db, &["import", "members", good.to_str().expect("path"), "--tenant", "demo"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("already exists"), "{}", stdout(&out));
    let check = kopilka(&db, &["check"]);
    assert!(check.status.success(), "{}", stdout(&check));
    let mig = kopilka(&db, &["migrate"]);
    // The newest version applied; versions may have gaps while work items land separately.
    assert!(mig.status.success() && stdout(&mig).contains("database is at migration "), "{}", stdout(&mig));
}

#[tokio::test]
async fn tenant_create_while_serving_sqlite() {
    tenant_create_while_serving("sqlite").await;
}

#[tokio::test]
async fn tenant_create_while_serving_postgres() {
    tenant_create_while_serving("postgres").await;
}

#[tokio::test]
async fn demo_import_check_sqlite() {
    demo_import_check("sqlite").await;
}

#[tokio::test]
async fn demo_import_check_postgres() {
    demo_import_check("postgres").await;
}

/// `tenant create --owner-email` prints a working one-time console link, and `staff
/// login-link` makes another (for a new cashier here); a bad email writes nothing.
async fn owner_login_links(backend: &str) {
    let db = database(backend).await;
    let server = serve(&db).await;
    let url = server.url.clone();
    let bad = kopilka(&db, &["tenant", "create", "--name", "No Owner", "--owner-email", "not-an-email", "--json"]);
    assert!(!bad.status.success());
    let out = Command::new(BIN)
        .args(["tenant", "create", "--name", "Owned", "--owner-email", "Boss@Owned.test", "--json"])
        .env("KOPILKA_DATABASE_URL", &db)
        .env("KOPILKA_PUBLIC_URL", &url)
        .env("KOPILKA_LOG", "warn")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["slug"], "owned", "the tenant without an owner was not created: {v}");
    let link = v["login_url"].as_str().expect("login_url");
    assert!(link.starts_with(&format!("{url}/admin/login/link/")), "{link}");
    // The link's page answers (the login itself is a POST with the page's CSRF token; the
    // web tests and the e2e tests cover it).
    let page = reqwest::get(link).await.expect("get");
    assert_eq!(page.status(), 200);
    let out = kopilka(&db, &["staff", "login-link", "--tenant", "owned", "--email", "till@owned.test", "--role", "cashier"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("till@owned.test (cashier)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("/admin/login/link/"), "{}", stdout(&out));
}

#[tokio::test]
async fn owner_login_links_sqlite() {
    owner_login_links("sqlite").await;
}

#[tokio::test]
async fn owner_login_links_postgres() {
    owner_login_links("postgres").await;
}
