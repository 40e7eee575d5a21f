//! Encryption of secrets at rest: ChaCha20-Poly1305 with a 256-bit key
//! kept in `secret.key` under the data directory (created with mode 0600),
//! or given in `CONFSYNC_SECRET_KEY` (64 hex digits). A sealed value is the
//! 12-byte nonce followed by the ciphertext and tag.

use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

#[derive(Clone)]
pub struct Cipher {
    cipher: ChaCha20Poly1305,
    /// The key again, only for `derive`.
    key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(key)
}

impl Cipher {
    pub fn from_key(key: [u8; 32]) -> Cipher {
        Cipher {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            key,
        }
    }

    /// The key `CONFSYNC_SECRET_KEY` gives, if set.
    pub fn from_env() -> Result<Option<Cipher>, String> {
        match std::env::var("CONFSYNC_SECRET_KEY") {
            Ok(text) => {
                let key = parse_hex(&text).ok_or("CONFSYNC_SECRET_KEY must be 64 hex digits")?;
                Ok(Some(Cipher::from_key(key)))
            }
            Err(_) => Ok(None),
        }
    }

    pub fn load_or_create(data_dir: &Path) -> Result<Cipher, String> {
        if let Some(cipher) = Cipher::from_env()? {
            return Ok(cipher);
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = parse_hex(&text)
                    .ok_or_else(|| format!("{} is not a 64-hex-digit key", path.display()))?;
                Ok(Cipher::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                write_private(&path, &hex)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok(Cipher::from_key(key))
            }
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// A key of its own for one purpose (signing OAuth states, say),
    /// derived from this one: one secret for the operator to keep, and
    /// no purpose's key reveals another's or the encryption key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"confsync key derivation\0");
        hash.update(purpose.as_bytes());
        hash.update([0]);
        hash.update(self.key);
        hash.finalize().into()
    }

    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(&nonce, plaintext)
                .map_err(|_| "encryption failed".to_string())?,
        );
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < 12 {
            return Err("sealed value too short".into());
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| "decryption failed: wrong key or corrupted value".to_string())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_tamper_fails() {
        let cipher = Cipher::from_key([7; 32]);
        let sealed = cipher.seal(b"api-token-secret").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "no plaintext at rest"
        );
        assert_eq!(cipher.open(&sealed).unwrap(), b"api-token-secret");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher.open(&tampered).is_err());
        assert!(Cipher::from_key([8; 32]).open(&sealed).is_err());
        assert!(cipher.open(b"short").is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_key() {
        let cipher = Cipher::from_key([7; 32]);
        assert_eq!(cipher.derive("a"), cipher.derive("a"));
        assert_ne!(cipher.derive("a"), cipher.derive("b"));
        assert_ne!(cipher.derive("a"), Cipher::from_key([8; 32]).derive("a"));
        assert_ne!(cipher.derive("a"), [7; 32]);
    }
}
