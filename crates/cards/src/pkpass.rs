//! Apple Wallet passes: a ZIP of pass.json, images, manifest.json (the SHA-1 of every
//! other file) and `signature`, a detached PKCS #7 signature of manifest.json.

use crate::sign::{PassSigner, SignError};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

/// Build a signed `.pkpass` from pass.json and the image files (`icon.png`, `logo.png`,
/// `strip.png`, and their `@2x` variants).
pub fn build(pass_json: &Value, images: &[(String, Vec<u8>)], signer: &PassSigner) -> Result<Vec<u8>, SignError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(images.len() + 3);
    files.push(("pass.json".into(), serde_json::to_vec_pretty(pass_json).expect("JSON values serialise")));
    files.extend(images.iter().cloned());
    let manifest = manifest(&files);
    let signature = signer.sign_detached(&manifest)?;
    files.push(("manifest.json".into(), manifest));
    files.push(("signature".into(), signature));
    Ok(crate::zip::store(&files))
}

/// manifest.json: each file's name and the hex SHA-1 of its bytes.
pub fn manifest(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut m = Map::new();
    for (name, bytes) in files {
        m.insert(name.clone(), Value::String(hex(&Sha1::digest(bytes))));
    }
    serde_json::to_vec_pretty(&Value::Object(m)).expect("JSON values serialise")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
