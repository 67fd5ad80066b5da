//! Every format, as PNG and as SVG, decodes with an independent reader to exactly the
//! data it was made from.

mod readers;

use kopilka_cards::codes::{self, CodeError, Format};

const CARD: &str = "2000000123455";
const TOKEN: &str = "qr_3f9c1a7be05d4c2a9e8f7b6a5d4c3b2a";

fn data_for(f: Format) -> &'static str {
    if f == Format::Qr || f == Format::Aztec { TOKEN } else { CARD }
}

#[test]
fn every_format_decodes_as_png_and_svg() {
    assert!(codes::is_ean13(CARD));
    let dir = readers::temp_dir("codes");
    for f in Format::ALL {
        let data = data_for(f);
        let m = codes::encode(f, data).expect("encodes");
        let png = codes::to_png(&m, codes::default_scale(&m));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = codes::to_svg(&m, codes::default_scale(&m));
        assert!(svg.contains("<svg"), "{svg}");
        if !readers::have(readers::reader_for(f.as_str())) {
            continue;
        }
        let p = dir.join(format!("{}.png", f.as_str()));
        std::fs::write(&p, &png).expect("write png");
        assert_eq!(readers::decode(f.as_str(), &p).as_deref(), Some(data), "{} PNG", f.as_str());
        if readers::have("rsvg-convert") {
            let s = dir.join(format!("{}.svg", f.as_str()));
            std::fs::write(&s, &svg).expect("write svg");
            let r = dir.join(format!("{}-svg.png", f.as_str()));
            readers::svg_to_png(&s, &r);
            assert_eq!(readers::decode(f.as_str(), &r).as_deref(), Some(data), "{} SVG", f.as_str());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ean13_needs_a_valid_13_digit_number() {
    assert_eq!(codes::encode(Format::Ean13, "2000000123456").unwrap_err(), CodeError::NotEan13);
    assert_eq!(codes::encode(Format::Ean13, "123456").unwrap_err(), CodeError::NotEan13);
    assert!(codes::encode(Format::Code128, "123456").is_ok(), "imported short numbers print as Code 128");
    assert_eq!(codes::encode(Format::Qr, "").unwrap_err(), CodeError::BadData);
    assert_eq!(codes::encode(Format::Qr, "кириллица").unwrap_err(), CodeError::BadData);
}

#[test]
fn formats_parse_by_their_query_names() {
    for f in Format::ALL {
        assert_eq!(Format::parse(f.as_str()), Some(f));
    }
    assert_eq!(Format::parse("QR"), None);
}
