//! Small raster helpers: PNG encoding and solid images for pass artwork.

/// Encode 8-bit greyscale pixels (row-major, `w * h` bytes) as PNG.
pub fn png_gray(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
    encode(w, h, png::ColorType::Grayscale, px)
}

/// Encode 8-bit RGB pixels as PNG.
pub fn png_rgb(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
    encode(w, h, png::ColorType::Rgb, px)
}

fn encode(w: u32, h: u32, color: png::ColorType, px: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        // Writing to a Vec cannot fail, and the sizes match by construction.
        let mut wr = enc.write_header().expect("png header");
        wr.write_image_data(px).expect("png data");
    }
    out
}

/// A solid rectangle of one colour (pass icons and logos when the programme has none).
pub fn solid_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let px: Vec<u8> = (0..w * h).flat_map(|_| rgb).collect();
    png_rgb(w, h, &px)
}

/// Whether bytes are a whole, decodable PNG of at most `max_side` pixels a side; its size.
pub fn png_check(bytes: &[u8], max_side: u32) -> Option<(u32, u32)> {
    let (w, h) = png_size(bytes)?;
    if w == 0 || h == 0 || w > max_side || h > max_side {
        return None;
    }
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().ok()?;
    let mut buf = vec![0u8; reader.output_buffer_size()?];
    reader.next_frame(&mut buf).ok()?;
    Some((w, h))
}

/// Whether bytes are a PNG file (by its signature), and its size.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

/// Parse `#rrggbb`.
pub fn parse_hex_color(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(h, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}
