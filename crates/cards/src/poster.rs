//! The printable enrolment poster: a QR code of the join link, as PNG or as a one-page A4
//! PDF (written by hand: standard Helvetica needs no embedded font, the QR is drawn as
//! filled squares).

use crate::codes::{self, CodeError, Format};

/// A PNG poster: the QR code, large, on white.
pub fn png(url: &str) -> Result<Vec<u8>, CodeError> {
    let m = codes::encode(Format::Qr, url)?;
    Ok(codes::to_png(&m, 16))
}

/// Keep text printable in the standard PDF fonts (WinAnsi): ASCII only, escaped.
fn pdf_text(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// An A4 PDF poster: a heading, the QR code and the link under it.
pub fn pdf(url: &str, heading: &str) -> Result<Vec<u8>, CodeError> {
    use std::fmt::Write;
    let m = codes::encode(Format::Qr, url)?;
    // A4 is 595 × 842 points; the code is 400 points wide, centred.
    let size = 400.0_f64;
    let module = size / m.width as f64;
    let (x0, y0) = ((595.0 - size) / 2.0, 230.0);
    let mut content = String::new();
    let _ = writeln!(content, "BT /F1 32 Tf 60 740 Td ({}) Tj ET", pdf_text(heading));
    content.push_str("BT /F1 18 Tf 60 700 Td (Scan the code to get your loyalty card) Tj ET\n");
    content.push_str("0 g\n");
    for y in 0..m.height {
        for x in 0..m.width {
            if m.get(x, y) {
                let px = x0 + x as f64 * module;
                let py = y0 + size - (y + 1) as f64 * module;
                let _ = writeln!(content, "{px:.2} {py:.2} {module:.2} {module:.2} re f");
            }
        }
    }
    let _ = writeln!(content, "BT /F1 12 Tf 60 190 Td ({}) Tj ET", pdf_text(url));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(tail, "{off:010} 00000 n ");
    }
    let _ = write!(tail, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    out.extend_from_slice(tail.as_bytes());
    Ok(out)
}
