//! The `download` feature against a local HTTP server: the file lands in the cache path
//! atomically, and a SHA-256 that does not match the torch.hub name prefix is refused.
//!
//! `cargo test --workspace --features kindling-finetune/download --test download`. Not in CI:
//! ureq turns on `bytes/std` and `log/default`, which Burn's crates share, so this build
//! compiles Burn a second time (~15 min on 2 cores).
#![cfg(feature = "download")]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use kindling_finetune::{FinetuneError, hub};

/// Serves `body` to `requests` GET requests on a free port; returns the base URL.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
        }
    });
    url
}

#[test]
fn downloads_into_the_cache_and_checks_the_hash_prefix() {
    let body = b"pretend weights".to_vec();
    // sha256("pretend weights") starts with these digits (`printf 'pretend weights' | sha256sum`).
    let good = format!("w-{}.pth", &sha256_hex(&body)[..8]);
    let url = serve(body.clone(), 2);
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("m.tv_in1k").join(&good);
    hub::download(&format!("{url}/{good}"), &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);

    let bad = dir.path().join("m.tv_in1k").join("w-00000000.pth");
    let err = hub::download(&format!("{url}/w-00000000.pth"), &bad).unwrap_err();
    assert!(matches!(err, FinetuneError::Download { .. }), "{err}");
    assert!(
        err.to_string().contains("does not start with 00000000"),
        "{err}"
    );
    assert!(!bad.exists() && !bad.with_extension("part").exists());
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(data)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
