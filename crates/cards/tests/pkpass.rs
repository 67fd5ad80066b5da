//! A pass built and signed with the development chain verifies with openssl, every
//! manifest hash matches, and a tampered pass fails.

mod readers;

use kopilka_cards::image::solid_png;
use kopilka_cards::pkpass;
use kopilka_cards::sign::{PassSigner, dev_chain};
use serde_json::json;

#[test]
fn signed_pass_verifies_and_tampering_is_caught() {
    let chain = dev_chain("pass.dev.kopilka", "DEVTEAM123").expect("dev chain");
    let signer = PassSigner::from_pem(&chain.cert_pem, &chain.key_pem, &chain.wwdr_pem).expect("signer");
    assert_eq!(signer.pass_type_id, "pass.dev.kopilka");
    assert_eq!(signer.team_id, "DEVTEAM123");
    let pass = json!({
        "formatVersion": 1, "passTypeIdentifier": signer.pass_type_id, "teamIdentifier": signer.team_id,
        "serialNumber": "m-1", "organizationName": "Cafe", "description": "Loyalty card",
        "storeCard": {"primaryFields": [{"key": "balance", "label": "Points", "value": 1234}]},
        "barcodes": [{"format": "PKBarcodeFormatQR", "message": "2000000123455", "messageEncoding": "iso-8859-1"}]
    });
    let images = vec![("icon.png".to_owned(), solid_png(29, 29, [200, 30, 30])), ("logo.png".to_owned(), solid_png(160, 50, [1, 2, 3]))];
    let bytes = pkpass::build(&pass, &images, &signer).expect("pass");
    if !(readers::have("openssl") && readers::have("python3")) {
        return;
    }
    let got = readers::verify_pkpass(&bytes).expect("a valid pass");
    assert_eq!(got["storeCard"]["primaryFields"][0]["value"], 1234);

    // Change the balance inside pass.json: the manifest hash no longer matches.
    let bad = readers::tamper(&bytes, b"1234", b"9999");
    let err = readers::verify_pkpass(&bad).expect_err("a tampered pass must fail");
    assert!(err.contains("pass.json"), "{err}");

    // A manifest changed to match: the signature no longer verifies.
    let key = b"\"pass.json\": \"";
    let start = bytes.windows(key.len()).position(|w| w == key).expect("manifest entry") + key.len();
    let old = bytes[start - key.len()..start + 4].to_vec();
    let mut new = old.clone();
    for b in &mut new[key.len()..] {
        *b = if *b == b'0' { b'1' } else { b'0' };
    }
    let bad = readers::tamper(&bytes, &old, &new);
    let err = readers::verify_pkpass(&bad).expect_err("a changed manifest must fail");
    assert!(err.contains("manifest") || err.contains("openssl"), "{err}");

    // The manifest re-spaced: same hashes, but the signed bytes changed.
    let bad = readers::tamper(&bytes, b"{\n  \"icon.png\"", b"{\n\t \"icon.png\"");
    let err = readers::verify_pkpass(&bad).expect_err("a manifest that differs from the signed one must fail");
    assert!(err.contains("openssl"), "{err}");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let a = dev_chain("pass.dev.a", "T1").expect("chain");
    let b = dev_chain("pass.dev.b", "T2").expect("chain");
    assert!(PassSigner::from_pem(&a.cert_pem, &b.key_pem, &a.wwdr_pem).is_err());
    assert!(PassSigner::from_pem("not a pem", &a.key_pem, &a.wwdr_pem).is_err());
}

#[test]
fn pkcs12_from_openssl_gives_the_same_signer() {
    if !readers::have("openssl") {
        return;
    }
    let chain = dev_chain("pass.dev.p12", "P12TEAM").expect("chain");
    let dir = readers::temp_dir("p12");
    std::fs::write(dir.join("cert.pem"), &chain.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &chain.key_pem).unwrap();
    use base64::Engine;
    // The default (AES, PBKDF2) and the legacy 3DES/RC2 that Keychain exports.
    for legacy in [false, true] {
        let out = dir.join(if legacy { "legacy.p12" } else { "modern.p12" });
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(["pkcs12", "-export", "-passout", "pass:s3cret", "-inkey"])
            .arg(dir.join("key.pem"))
            .arg("-in")
            .arg(dir.join("cert.pem"))
            .arg("-out")
            .arg(&out);
        if legacy {
            cmd.args(["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"]);
        }
        let st = cmd.output().expect("openssl");
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&out).unwrap());
        let (cert, key) = kopilka_cards::sign::pkcs12_to_pem(&b64, "s3cret").expect("reads");
        let signer = PassSigner::from_pem(&cert, &key, &chain.wwdr_pem).expect("signer");
        assert_eq!(signer.pass_type_id, "pass.dev.p12");
        assert!(kopilka_cards::sign::pkcs12_to_pem(&b64, "wrong").is_err(), "a wrong password is refused");
    }
    let _ = std::fs::remove_dir_all(dir);
}
