//! The five card code formats, encoded to a grid of dark/light modules with a quiet zone,
//! then drawn as PNG or SVG. Encoding is done by `rxing` (a port of ZXing); the quiet
//! zone and drawing are ours.

use rxing::{BarcodeFormat, EncodeHints, MultiFormatWriter, Writer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Qr,
    Code128,
    Ean13,
    Pdf417,
    Aztec,
}

impl Format {
    pub const ALL: [Format; 5] = [Format::Qr, Format::Code128, Format::Ean13, Format::Pdf417, Format::Aztec];

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "qr" => Some(Format::Qr),
            "code128" => Some(Format::Code128),
            "ean13" => Some(Format::Ean13),
            "pdf417" => Some(Format::Pdf417),
            "aztec" => Some(Format::Aztec),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Qr => "qr",
            Format::Code128 => "code128",
            Format::Ean13 => "ean13",
            Format::Pdf417 => "pdf417",
            Format::Aztec => "aztec",
        }
    }

    /// One-dimensional codes are a row of bars; they are drawn taller than one module.
    pub fn is_linear(self) -> bool {
        matches!(self, Format::Code128 | Format::Ean13)
    }

    /// Apple Wallet's name for the format (`PKBarcodeFormat…`); EAN-13 has none.
    pub fn apple(self) -> Option<&'static str> {
        match self {
            Format::Qr => Some("PKBarcodeFormatQR"),
            Format::Code128 => Some("PKBarcodeFormatCode128"),
            Format::Pdf417 => Some("PKBarcodeFormatPDF417"),
            Format::Aztec => Some("PKBarcodeFormatAztec"),
            Format::Ean13 => None,
        }
    }

    /// Google Wallet's barcode type.
    pub fn google(self) -> &'static str {
        match self {
            Format::Qr => "QR_CODE",
            Format::Code128 => "CODE_128",
            Format::Ean13 => "EAN_13",
            Format::Pdf417 => "PDF_417",
            Format::Aztec => "AZTEC",
        }
    }

    /// Light modules around the code: 10 for bars (EAN-13 asks for 11 on the left),
    /// 4 for QR, 2 for PDF417 and Aztec.
    fn quiet_zone(self) -> u32 {
        match self {
            Format::Code128 | Format::Ean13 => 11,
            Format::Qr => 4,
            Format::Pdf417 | Format::Aztec => 2,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// EAN-13 holds exactly 13 digits whose last is the check digit.
    #[error("an EAN-13 code needs a 13-digit number with a valid check digit")]
    NotEan13,
    #[error("the data is empty or too long for this format")]
    BadData,
}

/// A code as a grid of modules (true = dark), quiet zone included. For linear codes each
/// row is the same; `height` is then the bar height in modules.
#[derive(Debug, Clone)]
pub struct Modules {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    dark: Vec<bool>,
}

impl Modules {
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.dark[(y * self.width + x) as usize]
    }
}

/// The EAN-13 check digit rule: the number prints as EAN-13 unchanged only if it holds.
pub fn is_ean13(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 13 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..12].iter().enumerate().map(|(i, c)| (c - b'0') as u32 * if i % 2 == 0 { 1 } else { 3 }).sum();
    (10 - sum % 10) % 10 == (b[12] - b'0') as u32
}

/// Encode `data` in `format`. Data is printable ASCII (card numbers and tokens).
pub fn encode(format: Format, data: &str) -> Result<Modules, CodeError> {
    if data.is_empty() || data.len() > 256 || !data.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(CodeError::BadData);
    }
    if format == Format::Ean13 && !is_ean13(data) {
        return Err(CodeError::NotEan13);
    }
    let bf = match format {
        Format::Qr => BarcodeFormat::QR_CODE,
        Format::Code128 => BarcodeFormat::CODE_128,
        Format::Ean13 => BarcodeFormat::EAN_13,
        Format::Pdf417 => BarcodeFormat::PDF_417,
        Format::Aztec => BarcodeFormat::AZTEC,
    };
    let hints = EncodeHints { Margin: Some("0".into()), ..Default::default() };
    let m = MultiFormatWriter.encode_with_hints(data, &bf, 0, 0, &hints).map_err(|_| CodeError::BadData)?;
    let (w, h) = (m.getWidth(), m.getHeight());
    // The writers may pad; keep only the code itself.
    let [left, top, cw, ch] = m.getEnclosingRectangle().ok_or(CodeError::BadData)?;
    let _ = (w, h);
    let q = format.quiet_zone();
    let (code_h, rows) = if format.is_linear() {
        // Bars: one row repeated; a height of about a third of the width reads well.
        (1, (cw / 3).max(24))
    } else {
        (ch, ch)
    };
    let vq = if format.is_linear() { 4 } else { q };
    let width = cw + 2 * q;
    let height = rows + 2 * vq;
    let mut dark = vec![false; (width * height) as usize];
    for y in 0..rows {
        let sy = if code_h == 1 { top } else { top + y };
        for x in 0..cw {
            if m.get(left + x, sy) {
                dark[((y + vq) * width + x + q) as usize] = true;
            }
        }
    }
    Ok(Modules { format, width, height, dark })
}

/// Pixels per module for drawing, so that every format comes out a readable size.
pub fn default_scale(m: &Modules) -> u32 {
    match m.format {
        Format::Qr | Format::Aztec => 8,
        Format::Pdf417 => 3,
        Format::Code128 | Format::Ean13 => 3,
    }
}

/// Draw as an 8-bit greyscale PNG, `scale` pixels per module. PDF417 rows are drawn
/// three times as tall as wide, as the symbology expects.
pub fn to_png(m: &Modules, scale: u32) -> Vec<u8> {
    let (sx, sy) = row_scale(m, scale);
    let (w, h) = (m.width * sx, m.height * sy);
    let mut px = vec![255u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            if m.get(x / sx, y / sy) {
                px[(y * w + x) as usize] = 0;
            }
        }
    }
    crate::image::png_gray(w, h, &px)
}

fn row_scale(m: &Modules, scale: u32) -> (u32, u32) {
    let scale = scale.clamp(1, 32);
    if m.format == Format::Pdf417 { (scale, scale * 3) } else { (scale, scale) }
}

/// Draw as SVG: one path of unit squares (runs of dark modules merged per row).
pub fn to_svg(m: &Modules, scale: u32) -> String {
    use std::fmt::Write;
    let (sx, sy) = row_scale(m, scale);
    let (w, h) = (m.width * sx, m.height * sy);
    let mut path = String::new();
    for y in 0..m.height {
        let mut x = 0;
        while x < m.width {
            if m.get(x, y) {
                let start = x;
                while x < m.width && m.get(x, y) {
                    x += 1;
                }
                let _ = write!(path, "M{} {}h{}v{}h-{}z", start * sx, y * sy, (x - start) * sx, sy, (x - start) * sx);
            } else {
                x += 1;
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" shape-rendering=\"crispEdges\"><rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/><path fill=\"#000000\" d=\"{path}\"/></svg>\n"
    )
}
