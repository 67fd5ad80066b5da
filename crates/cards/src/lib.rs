//! Card codes and wallet passes, as pure functions: bytes in, bytes out. No IO, no SQL,
//! no clock except the signing time a CMS signature carries.
//!
//! - [`codes`]: QR, Code 128, EAN-13, PDF417 and Aztec as a module grid, then PNG or SVG;
//! - [`pkpass`]: an Apple Wallet `.pkpass` (pass.json, images, manifest, detached PKCS #7
//!   signature with the signer and WWDR certificates);
//! - [`sign`]: PEM keys and certificates, CMS signing, a self-signed development chain;
//! - [`gwallet`]: the RS256 "Save to Google Wallet" JWT;
//! - [`totp`]: the rotating QR token (30-second steps).

pub mod codes;
pub mod gwallet;
pub mod image;
pub mod pkpass;
pub mod poster;
pub mod sign;
pub mod totp;
mod zip;

pub use codes::{Format, Modules};
