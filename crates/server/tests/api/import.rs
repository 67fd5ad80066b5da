//! Member import through the admin endpoint, and the programme templates.

use crate::both;
use crate::helpers::*;
use serde_json::json;

async fn import(app: &TestApp, key: &str, csv: &str) -> (u16, serde_json::Value) {
    let resp = app.client.post(format!("{}/api/v1/members/import", app.url)).bearer_auth(key).body(csv.to_owned()).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

both!(members_import_all_or_nothing, |app: TestApp| async move {
    let t = app.tenant("Import").await;
    let store = app.store(&t.admin, "I1").await;
    let pos = app.pos_key(&t.admin, &store, None).await;
    let good = "card_number,phone,email,name,birthday,consent_personal_data,consent_marketing,points,points_expires_at\n\
                12345678,8 912 345-67-89,Anna@Example.com,Anna,1990-05-01,true,false,500,2099-01-01\n\
                4000000000017,,boris@example.com,Boris,,yes,no,0,\n\
                ,+44 20 7946 0958,,Clara,,,,70,\n";
    // A pos key may not import.
    let (s, v) = import(&app, &pos, good).await;
    assert_error(&(s, v), 403, "forbidden");

    // One bad row rejects the file; every bad row is named; nothing is written.
    let bad = format!("{good}12,bad-phone,x,Dan,1990-13-01,maybe,,-1,\n87654321,,anna@example.com,Eve,,,,5,\n");
    let (s, v) = import(&app, &t.admin, &bad).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "import_rejected");
    let fields = v["error"]["fields"].as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["row 4", "row 5"], "{v}");
    assert!(fields["row 5"].as_str().unwrap().contains("repeats an earlier row"), "{v}");
    let (_, list) = app.get(&t.admin, "/api/v1/members").await;
    assert_eq!(list["members"], json!([]), "nothing was imported");

    // The good file: members keep their card numbers, contacts are normalised, consents
    // are recorded, and opening balances keep their expiry dates.
    let (s, v) = import(&app, &t.admin, good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["imported"], 3);
    assert_eq!(v["points_imported"], 570);
    let (s, anna) = app.post(&t.admin, "/api/v1/members/lookup", json!({"card_number": "12345678"})).await;
    assert_eq!(s, 200, "{anna}");
    assert_eq!(anna["phone"], "+79123456789");
    assert_eq!(anna["email"], "anna@example.com");
    assert_eq!(anna["birthday"], "1990-05-01");
    assert_eq!(anna["consents"]["personal_data"]["granted"], true);
    assert_eq!(anna["consents"]["marketing"]["granted"], false);
    assert_eq!(anna["consents"]["marketing"]["source"], "import");
    let b = app.balance(&t.admin, anna["id"].as_str().unwrap()).await;
    assert_eq!(b["points"], 500);
    assert_eq!(b["expiring"], json!([{"points": 500, "expires_at": "2099-01-01T00:00:00Z"}]));
    let (_, clara) = app.post(&t.admin, "/api/v1/members/lookup", json!({"phone": "+442079460958"})).await;
    let card = clara["card_number"].as_str().unwrap();
    assert!(card.len() == 13 && card.starts_with('2'), "a member without a card gets a new one: {card}");
    assert_eq!(app.balance(&t.admin, clara["id"].as_str().unwrap()).await["points"], 70);
    // Opening balances are ledger entries with a reason.
    let (_, ledger) = app.get(&t.admin, &format!("/api/v1/members/{}/ledger", anna["id"].as_str().unwrap())).await;
    assert_eq!(ledger["entries"][0]["kind"], "adjust");
    assert_eq!(ledger["entries"][0]["points"], 500);
    assert_eq!(ledger["entries"][0]["reason"], "opening balance (import)");
    // The same file again clashes with the members now present.
    let (s, v) = import(&app, &t.admin, good).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["fields"]["row 1"].as_str().unwrap().contains("already exists"), "{v}");
    // Unknown columns are refused outright.
    let (s, v) = import(&app, &t.admin, "card,points\n1,2\n").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "validation_error");
    app.assert_ledger_consistent(&t).await;
});

both!(templates_are_valid_presets, |app: TestApp| async move {
    let t = app.tenant("Templates").await;
    let (s, v) = app.get(&t.admin, "/api/v1/program/templates").await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["templates"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["retail", "discount", "cafe", "fuel", "travel", "entertainment"]);
    // Each preset is a programme the API accepts as it is.
    for tpl in v["templates"].as_array().unwrap() {
        let p = app.program(&t.admin, tpl["program"].clone()).await;
        let mut got = p.clone();
        got.as_object_mut().unwrap().remove("version");
        assert_eq!(got, tpl["program"], "{}", tpl["name"]);
    }
    // The discount card: no points, a discount that grows with spend.
    let discount = &v["templates"][1]["program"];
    assert_eq!(discount["earn"]["points_per_unit"], 0);
    assert_eq!(discount["tiers"][0]["discount_bp"], 300);
});
