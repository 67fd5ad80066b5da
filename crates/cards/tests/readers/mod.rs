//! The independent readers the tests decode with: `zbarimg` (Debian zbar-tools) for QR,
//! Code 128 and EAN-13, `ZXingReader` (Debian zxing-cpp-tools) for PDF417 and Aztec, and
//! `rsvg-convert` (Debian librsvg2-bin) to rasterise SVG first. In CI a missing tool is a
//! failure; elsewhere the test says what is missing and passes without decoding.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Whether `tool` can run. Outside CI a missing tool prints a skip message.
pub fn have(tool: &str) -> bool {
    let ok = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required in CI (scripts/test.sh installs it)");
        }
        eprintln!("SKIP: {tool} is not installed; run scripts/test.sh as root to install it");
    }
    ok
}

/// Decode an image file; the text of the first code found, or None.
pub fn decode(format: &str, file: &Path) -> Option<String> {
    let out = match format {
        "qr" | "code128" | "ean13" => {
            let sym = match format {
                "qr" => "qrcode",
                "code128" => "code128",
                _ => "ean13",
            };
            Command::new("zbarimg").args(["-q", "--raw", "-Sdisable", &format!("-S{sym}.enable")]).arg(file).output().expect("zbarimg runs")
        }
        _ => {
            let f = if format == "pdf417" { "PDF417" } else { "Aztec" };
            Command::new("ZXingReader").args(["-format", f, "-bytes"]).arg(file).output().expect("ZXingReader runs")
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() { None } else { Some(text.lines().next().unwrap_or("").to_owned()) }
}

/// The tool a format needs.
pub fn reader_for(format: &str) -> &'static str {
    match format {
        "qr" | "code128" | "ean13" => "zbarimg",
        _ => "ZXingReader",
    }
}

/// Rasterise an SVG file to PNG with rsvg-convert.
pub fn svg_to_png(svg: &Path, png: &Path) {
    let st = Command::new("rsvg-convert").arg("-o").arg(png).arg(svg).status().expect("rsvg-convert runs");
    assert!(st.success(), "rsvg-convert failed on {}", svg.display());
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kopilka-cards-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Check a .pkpass independently: unzip it with Python's zipfile, recompute the SHA-1 of
/// every file and compare with manifest.json (every file but manifest.json and signature
/// must be listed, and nothing else), then verify the detached signature over
/// manifest.json with `openssl smime -verify`. Ok(pass.json) or Err(what failed).
pub fn verify_pkpass(pkpass: &[u8]) -> Result<serde_json::Value, String> {
    let dir = temp_dir(&format!("pkpass-{}", rand_suffix()));
    let file = dir.join("pass.pkpass");
    std::fs::write(&file, pkpass).map_err(|e| e.to_string())?;
    let out_dir = dir.join("x");
    let script = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
z.extractall(sys.argv[2])
m = json.loads(z.read("manifest.json"))
others = sorted(n for n in names if n not in ("manifest.json", "signature"))
if sorted(m) != others:
    sys.exit("manifest lists %s but the archive holds %s" % (sorted(m), others))
for n in others:
    h = hashlib.sha1(z.read(n)).hexdigest()
    if m[n] != h:
        sys.exit("hash of %s is %s, manifest says %s" % (n, h, m[n]))
"#;
    let py = Command::new("python3").arg("-c").arg(script).arg(&file).arg(&out_dir).output().map_err(|e| e.to_string())?;
    if !py.status.success() {
        return Err(format!("manifest check: {}", String::from_utf8_lossy(&py.stderr)));
    }
    let ssl = Command::new("openssl")
        .args(["smime", "-verify", "-binary", "-inform", "DER", "-noverify", "-out", "/dev/null", "-content"])
        .arg(out_dir.join("manifest.json"))
        .arg("-in")
        .arg(out_dir.join("signature"))
        .output()
        .map_err(|e| e.to_string())?;
    if !ssl.status.success() {
        return Err(format!("openssl smime -verify: {}", String::from_utf8_lossy(&ssl.stderr)));
    }
    let certs = Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"])
        .arg(out_dir.join("signature"))
        .output()
        .map_err(|e| e.to_string())?;
    let listing = String::from_utf8_lossy(&certs.stdout).to_string();
    if listing.matches("subject=").count() < 2 {
        return Err(format!("the signature should carry the signer and the WWDR certificates: {listing}"));
    }
    let pass = std::fs::read(out_dir.join("pass.json")).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_slice(&pass).map_err(|e| e.to_string())
}

/// Replace one stored file's bytes in a stored (uncompressed) zip without fixing the
/// manifest: the tampered pass the verification must reject.
pub fn tamper(pkpass: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    assert_eq!(needle.len(), replacement.len());
    let pos = pkpass.windows(needle.len()).position(|w| w == needle).expect("needle in the archive");
    let mut out = pkpass.to_vec();
    out[pos..pos + needle.len()].copy_from_slice(replacement);
    // Fix the CRC so the archive still unzips: only the manifest hash may catch it.
    let script = r#"
import io, sys, zipfile
data = open(sys.argv[1], "rb").read()
src = zipfile.ZipFile(io.BytesIO(data))
buf = io.BytesIO()
dst = zipfile.ZipFile(buf, "w")
for i in src.infolist():
    try:
        b = src.read(i.filename)
    except zipfile.BadZipFile:
        # CRC mismatch: read the raw stored bytes.
        src2 = zipfile.ZipFile(io.BytesIO(data))
        with src2.open(i) as f:
            f._expected_crc = None
            b = f.read()
    dst.writestr(i.filename, b)
dst.close()
open(sys.argv[1], "wb").write(buf.getvalue())
"#;
    let dir = temp_dir(&format!("tamper-{}", rand_suffix()));
    let f = dir.join("t.pkpass");
    std::fs::write(&f, &out).expect("write");
    let st = Command::new("python3").arg("-c").arg(script).arg(&f).status().expect("python3");
    assert!(st.success());
    let fixed = std::fs::read(&f).expect("read");
    let _ = std::fs::remove_dir_all(dir);
    fixed
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
