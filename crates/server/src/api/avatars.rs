//! Avatars: an uploaded image (PNG, JPEG or WebP) checked within limits, cropped to a square,
//! resized to 256 pixels and stored as PNG under a name made from its content, so that it is
//! served as immutable; without one, the app draws initials.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::io::Cursor;
use std::net::SocketAddr;

/// Largest upload, in bytes.
pub const MAX_UPLOAD: usize = 2 * 1024 * 1024;
/// The side of a stored avatar, in pixels.
pub const SIDE: u32 = 256;
/// Largest width or height of an image accepted (a small file may claim huge dimensions).
const MAX_DIMENSION: u32 = 8192;

/// The avatar made from an uploaded image: a PNG of [`SIDE`] × [`SIDE`], or why not.
pub fn square_png(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use image::{ImageFormat, ImageReader, Limits};
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => return Err("not a PNG, JPEG or WebP image".into()),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    let (w, h) = (image.width(), image.height());
    let side = w.min(h);
    if side == 0 {
        return Err("the image is empty".into());
    }
    let square = image
        .crop_imm((w - side) / 2, (h - side) / 2, side, side)
        .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
        .to_rgba8();
    let mut out = Vec::new();
    square
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// `PUT /api/v1/me/avatar`: the image as the body (up to 2 MiB); answers `{"avatar_url"}`.
pub async fn upload(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let me = caller.required()?;
    // Decoding costs: the strict per-address rate of sign-ins and new Spaces.
    state.gate.costly(peer.ip()).map_err(ApiError::Limited)?;
    let png = tokio::task::spawn_blocking(move || square_png(&body))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::BadRequest)?;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&png);
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("{name}.png");
    let storage = state.social.avatars.clone();
    let stored = key.clone();
    tokio::task::spawn_blocking(move || storage.put(&stored, &png))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("cannot store the avatar: {e}")))?;
    state.store.set_avatar(me.id, Some(&key)).await?;
    Ok(axum::Json(
        serde_json::json!({ "avatar_url": super::users::avatar_url(Some(&key)) }),
    ))
}

/// `DELETE /api/v1/me/avatar`: back to initials.
pub async fn remove(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let me = caller.required()?;
    state.store.set_avatar(me.id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /avatars/{name}`: a stored avatar, immutable (its name is its content's digest).
pub async fn file(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let valid = name.len() == 36
        && name.ends_with(".png")
        && name[..32].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return ApiError::NotFound("avatar").into_response();
    }
    let storage = state.social.avatars.clone();
    match tokio::task::spawn_blocking(move || storage.get(&name)).await {
        Ok(Ok(Some(bytes))) => {
            let mut response = bytes.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            response
        }
        _ => ApiError::NotFound("avatar").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 80, 160]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn an_image_becomes_a_square_png_of_256() {
        let out = square_png(&png(600, 300)).unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (SIDE, SIDE));
        // The middle of the wide image was kept: its left edge came from x = 150.
        let left = back.to_rgb8().get_pixel(0, 128)[0];
        assert!((140..=160).contains(&left), "{left}");
    }

    #[test]
    fn what_is_not_an_image_or_too_large_is_refused() {
        assert!(square_png(b"GIF89a not really").is_err());
        assert!(square_png(b"hello").is_err());
        let mut huge = png(1, 1);
        // The header claims 100 000 × 100 000 pixels (IHDR width and height), CRC aside.
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(square_png(&huge).is_err());
    }
}
