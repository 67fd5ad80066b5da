//! Google Wallet: the "Save to Google Wallet" JWT, RS256-signed with a service account's
//! key, and the service-account key file.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2_010::Sha256;

/// The parts of a Google service-account key file that signing needs.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    key: RsaPrivateKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount").field("client_email", &self.client_email).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("the service-account key file is not JSON with client_email and private_key")]
    Shape,
    #[error("the service-account private key is not an RSA key in PEM")]
    Key,
}

impl ServiceAccount {
    /// From the JSON key file Google issues (`client_email`, `private_key`,
    /// `private_key_id`).
    pub fn from_json(text: &str) -> Result<ServiceAccount, KeyFileError> {
        let v: Value = serde_json::from_str(text).map_err(|_| KeyFileError::Shape)?;
        let email = v["client_email"].as_str().filter(|s| !s.is_empty()).ok_or(KeyFileError::Shape)?;
        let pem = v["private_key"].as_str().ok_or(KeyFileError::Shape)?;
        let key = crate::sign::parse_rsa_key(pem).map_err(|_| KeyFileError::Key)?;
        Ok(ServiceAccount { client_email: email.to_owned(), private_key_id: v["private_key_id"].as_str().unwrap_or("").to_owned(), key })
    }

    pub fn key(&self) -> &RsaPrivateKey {
        &self.key
    }
}

/// Sign `claims` as a compact JWS with RS256.
pub fn sign_rs256(claims: &Value, key: &RsaPrivateKey, kid: &str) -> String {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if !kid.is_empty() {
        header["kid"] = json!(kid);
    }
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{c}");
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The "Save to Google Wallet" JWT for one loyalty class and object.
pub fn save_jwt(sa: &ServiceAccount, origins: &[String], class: &Value, object: &Value, iat: i64) -> String {
    let claims = json!({
        "iss": sa.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": iat,
        "origins": origins,
        "payload": {"loyaltyClasses": [class], "loyaltyObjects": [object]},
    });
    sign_rs256(&claims, &sa.key, &sa.private_key_id)
}

/// The save link for a JWT.
pub fn save_url(jwt: &str) -> String {
    format!("https://pay.google.com/gp/v/save/{jwt}")
}
