//! Web Push against a real receiver run here: it checks each message's VAPID signature
//! (RFC 8292) and headers, decrypts its RFC 8291 payload with the browser's private key (from
//! the primitives: ECDH, HKDF, AES-128-GCM), and counts. A subscription its push service says
//! is gone is forgotten.

mod common;

use aes_gcm::aead::{Aead, KeyInit};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{TestServer, signed_up};
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A browser's push keys.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        Self {
            secret: p256::SecretKey::random(&mut rand_core()),
            auth: {
                use p256::elliptic_curve::rand_core::RngCore;
                let mut auth = [0u8; 16];
                rand_core().fill_bytes(&mut auth);
                auth
            },
        }
    }

    fn public(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// RFC 8291 §3.4 and RFC 8188: the plaintext of one aes128gcm message.
    fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let salt = body.get(..16).ok_or("short header")?;
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        let idlen = body[20] as usize;
        let keyid = body.get(21..21 + idlen).ok_or("short key id")?;
        let records = &body[21 + idlen..];
        if records.len() > rs {
            return Err("more than one record".into());
        }
        let sender = p256::PublicKey::from_sec1_bytes(keyid).map_err(|e| e.to_string())?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend(self.public());
        info.extend(keyid);
        let mut ikm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .map_err(|e| e.to_string())?;
        let prk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
        let mut plain = cipher
            .decrypt((&nonce).into(), records)
            .map_err(|_| "the record does not decrypt")?;
        // The last record ends with 0x02 and optional zero padding.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        if plain.pop() != Some(2) {
            return Err("no last-record delimiter".into());
        }
        Ok(plain)
    }
}

fn rand_core() -> p256::elliptic_curve::rand_core::OsRng {
    p256::elliptic_curve::rand_core::OsRng
}

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// Decrypted bodies, with their Topic and Urgency.
    messages: Vec<(Value, String, String)>,
    /// Messages refused, and why.
    refused: Vec<String>,
    /// Requests to the endpoint that answers "gone".
    gone: usize,
}

struct Receiver {
    browser: Browser,
    origin: String,
    server_key: Mutex<Option<Vec<u8>>>,
    seen: Mutex<Received>,
}

/// RFC 8292: `vapid t=JWT, k=KEY`, the JWT signed with ES256 by the server's key, for this
/// origin, not expired, not valid for more than a day, with a contact.
fn check_vapid(rx: &Receiver, headers: &HeaderMap) -> Result<(), String> {
    let value = headers
        .get("authorization")
        .ok_or("no Authorization")?
        .to_str()
        .unwrap();
    let rest = value.strip_prefix("vapid ").ok_or("not vapid")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or("bad parameter")?;
        match k {
            "t" => token = Some(v.to_owned()),
            "k" => key = Some(B64.decode(v).map_err(|e| e.to_string())?),
            _ => {}
        }
    }
    let (token, key) = (token.ok_or("no t")?, key.ok_or("no k")?);
    if rx.server_key.lock().unwrap().as_deref() != Some(key.as_slice()) {
        return Err("k is not the server's published key".into());
    }
    let (signed, signature) = token.rsplit_once('.').ok_or("not a JWT")?;
    let (header, claims) = signed.split_once('.').ok_or("not a JWT")?;
    let header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    if header["alg"] != "ES256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key).map_err(|e| e.to_string())?;
    let signature = p256::ecdsa::Signature::from_slice(&B64.decode(signature).unwrap())
        .map_err(|e| e.to_string())?;
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the signature does not verify")?;
    let claims: Value = serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap();
    if claims["aud"] != rx.origin.as_str() {
        return Err(format!("aud {} is not {}", claims["aud"], rx.origin));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within a day from {now}"));
    }
    let sub = claims["sub"].as_str().ok_or("no sub")?;
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub}"));
    }
    Ok(())
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    Path(which): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if which == "gone" {
        rx.seen.lock().unwrap().gone += 1;
        return StatusCode::GONE;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let checked = check_vapid(&rx, &headers).and_then(|()| {
        if header("content-encoding") != "aes128gcm" {
            return Err("Content-Encoding is not aes128gcm".into());
        }
        if header("ttl").parse::<u32>().is_err() {
            return Err("no TTL".into());
        }
        rx.browser.decrypt(&body)
    });
    let mut seen = rx.seen.lock().unwrap();
    match checked {
        Ok(plain) => {
            let json: Value = serde_json::from_slice(&plain).unwrap_or(Value::Null);
            seen.messages
                .push((json, header("topic"), header("urgency")));
            StatusCode::CREATED
        }
        Err(why) => {
            seen.refused.push(why);
            StatusCode::BAD_REQUEST
        }
    }
}

#[tokio::test]
async fn live_alerts_reach_a_real_push_receiver_encrypted_and_signed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let rx = Arc::new(Receiver {
        browser: Browser::new(),
        origin: origin.clone(),
        server_key: Mutex::new(None),
        seen: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/push/{which}", axum::routing::post(receive))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = TestServer::start_with("push", |c| c.social.push_allow_http = Some(true)).await;
    let key = server
        .api()
        .call(Method::GET, "/push/key", None)
        .await
        .unwrap();
    let published = B64.decode(key["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(published.len(), 65, "an uncompressed P-256 point");
    *rx.server_key.lock().unwrap() = Some(published);

    let host = signed_up(&server, "pushhost").await;
    let fan = signed_up(&server, "pushfan").await;
    fan.call(Method::POST, "/users/pushhost/follow", None)
        .await
        .unwrap();
    let keys =
        json!({"p256dh": B64.encode(rx.browser.public()), "auth": B64.encode(rx.browser.auth)});
    for which in ["browser", "gone"] {
        let sub = json!({"endpoint": format!("{origin}/push/{which}"), "keys": keys});
        fan.call(Method::POST, "/push/subscriptions", Some(sub))
            .await
            .unwrap();
    }
    // Refused: a key that is not a point, a secret that is not 16 bytes, not a URL.
    for bad in [
        json!({"endpoint": format!("{origin}/push/x"), "keys": {"p256dh": "AAAA", "auth": keys["auth"]}}),
        json!({"endpoint": format!("{origin}/push/x"), "keys": {"p256dh": keys["p256dh"], "auth": "AAAA"}}),
        json!({"endpoint": "ftp://example/x", "keys": keys}),
    ] {
        let e = fan
            .call(Method::POST, "/push/subscriptions", Some(bad))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("400"), "{e}");
    }

    let space = host.create_space("Pushed").await.unwrap();
    host.command(&space, json!({"cmd": "start"})).await.unwrap();
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        {
            let seen = rx.seen.lock().unwrap();
            assert!(seen.refused.is_empty(), "refused: {:?}", seen.refused);
            if !seen.messages.is_empty() && seen.gone > 0 {
                break;
            }
        }
        assert!(Instant::now() < until, "no push arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let seen = rx.seen.lock().unwrap();
        assert_eq!(seen.messages.len(), 1, "one alert, once");
        let (body, topic, urgency) = &seen.messages[0];
        assert_eq!(body["kind"], "live");
        assert_eq!(body["space_id"].as_str(), Some(space.as_str()));
        assert_eq!(body["title"], "Pushed");
        assert_eq!(body["host_handle"], "pushhost");
        assert_eq!(topic, &format!("live-{space}"));
        assert_eq!(urgency, "high");
    }
    // The inbox's other events reach the phone too: a follow, a like, a reply, each once.
    host.call(Method::POST, "/users/pushfan/follow", None)
        .await
        .unwrap();
    let post = fan
        .call(Method::POST, "/posts", Some(json!({"text": "mine"})))
        .await
        .unwrap();
    let id = post["id"].as_u64().unwrap();
    host.call(Method::POST, &format!("/posts/{id}/like"), None)
        .await
        .unwrap();
    host.call(
        Method::POST,
        "/posts",
        Some(json!({"text": "yes", "reply_to": id})),
    )
    .await
    .unwrap();
    // A second like within the minute (another account) buzzes nobody again.
    let third = signed_up(&server, "pushthird").await;
    third
        .call(Method::POST, &format!("/posts/{id}/like"), None)
        .await
        .unwrap();
    // "kind:topic" of each message received so far.
    let received = || -> Vec<String> {
        let seen = rx.seen.lock().unwrap();
        seen.messages
            .iter()
            .map(|(body, topic, _)| format!("{}:{topic}", body["kind"].as_str().unwrap_or("")))
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(10);
    while received().len() < 4 {
        assert!(Instant::now() < until, "pushes so far: {:?}", received());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more comes (the second like buzzes nobody); sent side by side, the three may
    // arrive in any order.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after_live = received()[1..].to_vec();
    after_live.sort();
    assert_eq!(
        after_live,
        [
            "follow:follow".to_string(),
            format!("like:like-{id}"),
            format!("reply:reply-{id}")
        ]
    );
    assert!(rx.seen.lock().unwrap().refused.is_empty());

    // The subscription whose service answered 410 is forgotten.
    let fan_id = server
        .state
        .store
        .user_with_hash("pushfan")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let subs = server
            .state
            .store
            .push_subscriptions(&[fan_id])
            .await
            .unwrap();
        if subs.len() == 1 {
            assert!(subs[0].endpoint.ends_with("/push/browser"));
            break;
        }
        assert!(
            Instant::now() < until,
            "the gone subscription stays: {subs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}
