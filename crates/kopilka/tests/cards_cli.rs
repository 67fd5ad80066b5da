//! `kopilka cards dev-cert` makes a development signing chain that openssl accepts.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kopilka");

#[test]
fn dev_cert_makes_a_chain_openssl_verifies() {
    let dir = std::env::temp_dir().join(format!("kopilka-devcert-{}", std::process::id()));
    let out = Command::new(BIN)
        .args(["cards", "dev-cert", "--pass-type-id", "pass.dev.cli", "--team-id", "CLITEAM", "--out"])
        .arg(&dir)
        .env("KOPILKA_LOG", "warn")
        .output()
        .expect("run kopilka");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for var in ["KOPILKA_PASS_CERT=", "KOPILKA_PASS_KEY=", "KOPILKA_PASS_WWDR="] {
        assert!(text.contains(var), "{text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("pass-key.pem")).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    }
    let have_openssl = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if have_openssl {
        let v = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(dir.join("wwdr.pem"))
            .arg(dir.join("pass-cert.pem"))
            .output()
            .expect("openssl");
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
        let s =
            Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(dir.join("pass-cert.pem")).output().expect("openssl");
        let subject = String::from_utf8_lossy(&s.stdout);
        assert!(subject.contains("pass.dev.cli") && subject.contains("CLITEAM"), "{subject}");
    } else if std::env::var_os("CI").is_some() {
        panic!("openssl is required in CI");
    }
    // serve starts with it (the certificate and key are read and checked at start).
    let bad = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:1"])
        .env("KOPILKA_PASS_CERT", dir.join("pass-cert.pem"))
        .env("KOPILKA_PASS_KEY", dir.join("wwdr.pem"))
        .env("KOPILKA_PASS_WWDR", dir.join("wwdr.pem"))
        .env("KOPILKA_DATABASE_URL", format!("sqlite:{}", dir.join("k.db").display()))
        .output()
        .expect("run kopilka");
    assert!(!bad.status.success(), "a certificate file given as the key is refused at start");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("KOPILKA_PASS"), "{}", String::from_utf8_lossy(&bad.stderr));
    let _ = std::fs::remove_dir_all(dir);
}
