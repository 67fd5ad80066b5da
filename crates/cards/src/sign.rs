//! Keys and certificates for pass signing: PEM parsing, the detached CMS (PKCS #7)
//! signature Apple Wallet expects, and a self-signed development chain.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder, create_signing_time_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::{Decode, DecodePem, Encode, EncodePem};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2_010::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the certificate is not a PEM X.509 certificate")]
    BadCertificate,
    #[error("the private key is not an unencrypted RSA key in PEM (PKCS #8 or PKCS #1)")]
    BadKey,
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate has no pass type identifier (UID) in its subject")]
    NoPassTypeId,
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("the PKCS #12 bundle {0}")]
    Pkcs12(String),
}

/// A parsed RSA private key from PEM: PKCS #8 (`PRIVATE KEY`) or PKCS #1 (`RSA PRIVATE KEY`).
pub fn parse_rsa_key(pem: &str) -> Result<RsaPrivateKey, SignError> {
    RsaPrivateKey::from_pkcs8_pem(pem.trim()).or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim())).map_err(|_| SignError::BadKey)
}

/// Every certificate in a PEM bundle, in order.
pub fn parse_certs(pem: &str) -> Result<Vec<Certificate>, SignError> {
    let certs = Certificate::load_pem_chain(pem.trim().as_bytes()).map_err(|_| SignError::BadCertificate)?;
    if certs.is_empty() { Err(SignError::BadCertificate) } else { Ok(certs) }
}

const OID_UID: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("0.9.2342.19200300.100.1.1");
const OID_OU: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.11");

fn subject_attr(cert: &Certificate, oid: der::asn1::ObjectIdentifier) -> Option<String> {
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == oid {
                if let Ok(s) = der::asn1::Utf8StringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = der::asn1::PrintableStringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_owned());
                }
                if let Ok(s) = der::asn1::Ia5StringRef::try_from(&atv.value) {
                    return Some(s.as_str().to_owned());
                }
            }
        }
    }
    None
}

/// A pass signing identity: the Pass Type ID certificate, its key and Apple's WWDR
/// intermediate (or, in development, the self-signed stand-ins).
#[derive(Clone)]
pub struct PassSigner {
    key: RsaPrivateKey,
    cert: Certificate,
    wwdr: Certificate,
    /// `passTypeIdentifier`, from the certificate's subject UID.
    pub pass_type_id: String,
    /// `teamIdentifier`, from the certificate's subject OU.
    pub team_id: String,
}

impl PassSigner {
    /// The certificate (DER) and key (PKCS #8 DER): the TLS client identity that
    /// authenticates pushes to APNs for this pass type.
    pub fn identity_der(&self) -> Result<(Vec<u8>, Vec<u8>), SignError> {
        let err = |e: &dyn std::fmt::Display| SignError::Signing(e.to_string());
        let cert = self.cert.to_der().map_err(|e| err(&e))?;
        let key = self.key.to_pkcs8_der().map_err(|e| err(&e))?.as_bytes().to_vec();
        Ok((cert, key))
    }
}

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("PassSigner").field("pass_type_id", &self.pass_type_id).field("team_id", &self.team_id).finish()
    }
}

impl PassSigner {
    /// From PEM: the certificate (a bundle whose first certificate is the signer), its
    /// unencrypted private key, and the WWDR intermediate.
    pub fn from_pem(cert_pem: &str, key_pem: &str, wwdr_pem: &str) -> Result<PassSigner, SignError> {
        let cert = parse_certs(cert_pem)?.remove(0);
        let wwdr = parse_certs(wwdr_pem)?.remove(0);
        let key = parse_rsa_key(key_pem)?;
        Self::new(key, cert, wwdr)
    }

    pub fn new(key: RsaPrivateKey, cert: Certificate, wwdr: Certificate) -> Result<PassSigner, SignError> {
        let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|_| SignError::BadKey)?;
        if spki != cert.tbs_certificate.subject_public_key_info {
            return Err(SignError::KeyMismatch);
        }
        let pass_type_id = subject_attr(&cert, OID_UID).ok_or(SignError::NoPassTypeId)?;
        let team_id = subject_attr(&cert, OID_OU).unwrap_or_default();
        Ok(PassSigner { key, cert, wwdr, pass_type_id, team_id })
    }

    /// The signing certificate's expiry (Unix seconds).
    pub fn not_after(&self) -> i64 {
        self.cert.tbs_certificate.validity.not_after.to_unix_duration().as_secs() as i64
    }

    /// A detached CMS SignedData (DER) over `data`: SHA-256, RSA PKCS #1 v1.5, signed
    /// attributes with content type, message digest and signing time, and the signer and
    /// WWDR certificates.
    pub fn sign_detached(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        let err = |e: &dyn std::fmt::Display| SignError::Signing(e.to_string());
        let content = EncapsulatedContentInfo { econtent_type: const_oid_data(), econtent: None };
        let digest = Sha256::digest(data);
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: self.cert.tbs_certificate.issuer.clone(),
            serial_number: self.cert.tbs_certificate.serial_number.clone(),
        });
        let digest_alg = AlgorithmIdentifierOwned { oid: sha2_010::Sha256::OID, parameters: None };
        let mut sib = SignerInfoBuilder::new(&signer, sid, digest_alg.clone(), &content, Some(&digest)).map_err(|e| err(&e))?;
        sib.add_signed_attribute(create_signing_time_attribute().map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        let mut b = SignedDataBuilder::new(&content);
        b.add_digest_algorithm(digest_alg)
            .map_err(|e| err(&e))?
            .add_certificate(CertificateChoices::Certificate(self.cert.clone()))
            .map_err(|e| err(&e))?
            .add_certificate(CertificateChoices::Certificate(self.wwdr.clone()))
            .map_err(|e| err(&e))?
            .add_signer_info::<SigningKey<Sha256>, rsa::pkcs1v15::Signature>(sib)
            .map_err(|e| err(&e))?;
        b.build().map_err(|e| err(&e))?.to_der().map_err(|e| err(&e))
    }

    /// An RS256 signature (for tokens signed with the same key).
    pub fn key(&self) -> &RsaPrivateKey {
        &self.key
    }
}

fn const_oid_data() -> der::asn1::ObjectIdentifier {
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1")
}

use sha2_010::digest::const_oid::AssociatedOid;

/// A development signing chain in PEM: a self-signed stand-in for Apple's WWDR
/// intermediate, and a pass certificate it issued. Wallet on a phone will not accept it;
/// `openssl smime -verify -noverify` and the tests do.
#[derive(Debug, Clone)]
pub struct DevChain {
    pub wwdr_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Make a development chain for `pass_type_id` (e.g. `pass.dev.kopilka`) and `team_id`.
pub fn dev_chain(pass_type_id: &str, team_id: &str) -> Result<DevChain, SignError> {
    let err = |e: &dyn std::fmt::Display| SignError::Signing(e.to_string());
    let safe = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') && !s.is_empty();
    if !safe(pass_type_id) || !safe(team_id) {
        return Err(SignError::Signing("pass type id and team id take letters, digits, dots and hyphens".into()));
    }
    let mut rng = rand_core::OsRng;
    let ca_key = RsaPrivateKey::new(&mut rng, 2048).map_err(|e| err(&e))?;
    let ca_signer = SigningKey::<Sha256>::new(ca_key.clone());
    let ca_name = Name::from_str("CN=Kopilka Development WWDR Stand-in,OU=G4,O=Kopilka Development,C=RU").map_err(|e| err(&e))?;
    let ten_years = Validity::from_now(Duration::from_secs(10 * 365 * 86_400)).map_err(|e| err(&e))?;
    let ca_spki = SubjectPublicKeyInfoOwned::from_key(ca_key.to_public_key()).map_err(|e| err(&e))?;
    let ca = CertificateBuilder::new(Profile::Root, serial(1), ten_years, ca_name.clone(), ca_spki, &ca_signer)
        .map_err(|e| err(&e))?
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| err(&e))?;
    let key = RsaPrivateKey::new(&mut rng, 2048).map_err(|e| err(&e))?;
    let subject = Name::from_str(&format!("UID={pass_type_id},CN=Pass Type ID: {pass_type_id},OU={team_id},O=Kopilka Development,C=RU"))
        .map_err(|e| err(&e))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| err(&e))?;
    let profile = Profile::Leaf { issuer: ca_name, enable_key_agreement: false, enable_key_encipherment: false };
    let cert = CertificateBuilder::new(profile, serial(2), ten_years, subject, spki, &ca_signer)
        .map_err(|e| err(&e))?
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| err(&e))?;
    Ok(DevChain {
        wwdr_pem: ca.to_pem(LineEnding::LF).map_err(|e| err(&e))?,
        cert_pem: cert.to_pem(LineEnding::LF).map_err(|e| err(&e))?,
        key_pem: key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?.to_string(),
    })
}

fn serial(n: u8) -> SerialNumber {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b[0] &= 0x7f;
    b[15] = n;
    SerialNumber::new(&b).expect("a 16-byte positive serial")
}

/// Certificate DER to check a stored one (used by tests and the admin API).
pub fn cert_der(cert_pem: &str) -> Result<Vec<u8>, SignError> {
    let c = Certificate::from_pem(cert_pem.trim().as_bytes()).map_err(|_| SignError::BadCertificate)?;
    let der = c.to_der().map_err(|_| SignError::BadCertificate)?;
    Certificate::from_der(&der).map_err(|_| SignError::BadCertificate)?;
    Ok(der)
}

/// Read a PKCS #12 bundle (base64, as exported from Keychain or by openssl, legacy
/// 3DES/RC2 or AES): the certificate and its key as PEM.
pub fn pkcs12_to_pem(b64: &str, password: &str) -> Result<(String, String), SignError> {
    use base64::Engine;
    let err = |e: &dyn std::fmt::Display| SignError::Signing(e.to_string());
    let data = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| SignError::Pkcs12("not base64".into()))?;
    let store = p12_keystore::KeyStore::from_pkcs12(&data, password)
        .map_err(|e| SignError::Pkcs12(format!("cannot be read with this password ({e})")))?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| SignError::Pkcs12("holds no private key".into()))?;
    let key = RsaPrivateKey::from_pkcs8_der(chain.key()).map_err(|_| SignError::BadKey)?;
    let cert = chain.chain().first().ok_or_else(|| SignError::Pkcs12("holds no certificate".into()))?;
    let cert = Certificate::from_der(cert.as_der()).map_err(|_| SignError::BadCertificate)?;
    Ok((cert.to_pem(LineEnding::LF).map_err(|e| err(&e))?, key.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?.to_string()))
}
