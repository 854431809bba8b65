//! `web.logo_file`: an image shown above the page's title, read once at start-up and
//! served by the binary at `<web.path>/logo`.

use bytes::Bytes;

use crate::config::{ConfigError, Web};

/// The largest logo accepted: a page's logo, not a photograph.
const MAX_BYTES: u64 = 256 * 1024;

pub struct Logo {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// The configured logo; none when `web.logo_file` is empty.
pub fn load(web: &Web) -> Result<Option<Logo>, ConfigError> {
    let path = &web.logo_file;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let bad = |e: String| ConfigError(format!("`web.logo_file`: {}: {e}", path.display()));
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let content_type = match extension.as_str() {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        _ => return Err(bad("must be a .png, .svg, .jpg, .webp or .gif file".into())),
    };
    let size = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > MAX_BYTES {
        return Err(bad(format!("{size} bytes; at most {MAX_BYTES}")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    Ok(Some(Logo {
        bytes: Bytes::from(bytes),
        content_type,
    }))
}
