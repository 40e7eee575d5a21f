//! The OAuth 2.0 (3LO) authorization server, as Atlassian's behaves:
//! authorization codes, access tokens with a configurable lifetime, and
//! rotating refresh tokens. A refresh token is disabled when it is used; a
//! rotated token presented again within the reuse grace (10 minutes by
//! default) still answers, and presented after it, invalidates its whole
//! family.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user: u16,
    pub scope: String,
    pub expires: Instant,
}

pub struct AccessGrant {
    pub user: u16,
    pub scope: String,
    pub expires: Instant,
}

struct RefreshGrant {
    family: u64,
    user: u16,
    scope: String,
    client_id: String,
    rotated_at: Option<Instant>,
}

pub struct OAuthServer {
    pub client_id: String,
    pub client_secret: String,
    pub access_token_ttl: Duration,
    pub refresh_grace: Duration,
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    revoked_families: std::collections::HashSet<u64>,
    next_family: u64,
    rng: ChaCha8Rng,
    /// Refresh tokens presented after they had been rotated, within grace or
    /// not: a client that persists its tokens correctly causes none.
    pub refresh_reuses: u64,
}

/// Why a token request failed, in OAuth's terms.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    InvalidClient,
    InvalidGrant(&'static str),
    UnsupportedGrantType,
    InvalidRequest(&'static str),
}

pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    pub scope: String,
}

impl OAuthServer {
    pub fn new(seed: u64, access_token_ttl: Duration, refresh_grace: Duration) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0a07);
        OAuthServer {
            client_id: random_token(&mut rng, 16),
            client_secret: random_token(&mut rng, 32),
            access_token_ttl,
            refresh_grace,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            revoked_families: Default::default(),
            next_family: 1,
            rng,
            refresh_reuses: 0,
        }
    }

    pub fn issue_code(&mut self, grant: CodeGrant) -> String {
        let code = random_token(&mut self.rng, 24);
        self.codes.insert(code.clone(), grant);
        code
    }

    fn check_client(&self, client_id: &str, client_secret: &str) -> Result<(), TokenError> {
        if client_id == self.client_id && client_secret == self.client_secret {
            Ok(())
        } else {
            Err(TokenError::InvalidClient)
        }
    }

    fn mint(
        &mut self,
        user: u16,
        scope: &str,
        client_id: &str,
        family: Option<u64>,
        now: Instant,
    ) -> TokenPair {
        let access_token = random_token(&mut self.rng, 48);
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                user,
                scope: scope.to_string(),
                expires: now + self.access_token_ttl,
            },
        );
        let refresh_token = if scope.split(' ').any(|s| s == "offline_access") {
            let family = family.unwrap_or_else(|| {
                self.next_family += 1;
                self.next_family
            });
            let token = random_token(&mut self.rng, 48);
            self.refresh.insert(
                token.clone(),
                RefreshGrant {
                    family,
                    user,
                    scope: scope.to_string(),
                    client_id: client_id.to_string(),
                    rotated_at: None,
                },
            );
            Some(token)
        } else {
            None
        };
        TokenPair {
            access_token,
            refresh_token,
            expires_in: self.access_token_ttl.as_secs().max(1),
            scope: scope.to_string(),
        }
    }

    pub fn exchange_code(
        &mut self,
        client_id: &str,
        client_secret: &str,
        code: &str,
        redirect_uri: &str,
        now: Instant,
    ) -> Result<TokenPair, TokenError> {
        self.check_client(client_id, client_secret)?;
        // A code is single-use: it is removed whatever the outcome.
        let grant = self
            .codes
            .remove(code)
            .ok_or(TokenError::InvalidGrant("Invalid authorization code"))?;
        if grant.expires < now {
            return Err(TokenError::InvalidGrant("Authorization code expired"));
        }
        if grant.client_id != client_id || grant.redirect_uri != redirect_uri {
            return Err(TokenError::InvalidGrant(
                "redirect_uri or client_id does not match the authorization request",
            ));
        }
        Ok(self.mint(grant.user, &grant.scope, client_id, None, now))
    }

    pub fn refresh(
        &mut self,
        client_id: &str,
        client_secret: &str,
        token: &str,
        now: Instant,
    ) -> Result<TokenPair, TokenError> {
        self.check_client(client_id, client_secret)?;
        let grant = self.refresh.get_mut(token).ok_or(TokenError::InvalidGrant(
            "Unknown or invalid refresh token.",
        ))?;
        if grant.client_id != client_id {
            return Err(TokenError::InvalidGrant(
                "Unknown or invalid refresh token.",
            ));
        }
        let family = grant.family;
        if self.revoked_families.contains(&family) {
            return Err(TokenError::InvalidGrant(
                "Unknown or invalid refresh token.",
            ));
        }
        if let Some(rotated_at) = grant.rotated_at {
            self.refresh_reuses += 1;
            if now.saturating_duration_since(rotated_at) > self.refresh_grace {
                // Reuse after the grace: treat the family as stolen.
                self.revoked_families.insert(family);
                return Err(TokenError::InvalidGrant(
                    "Unknown or invalid refresh token.",
                ));
            }
        } else {
            grant.rotated_at = Some(now);
        }
        let (user, scope) = (grant.user, grant.scope.clone());
        Ok(self.mint(user, &scope, client_id, Some(family), now))
    }

    /// The user an access token acts for; `Err(true)` when it is known but
    /// expired, `Err(false)` when unknown.
    pub fn access_user(&self, token: &str, now: Instant) -> Result<u16, bool> {
        match self.access.get(token) {
            Some(grant) if grant.expires > now => Ok(grant.user),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    pub fn access_scope(&self, token: &str) -> Option<&str> {
        self.access.get(token).map(|g| g.scope.as_str())
    }

    /// Forgets expired codes and access tokens, so a long run stays small.
    pub fn sweep(&mut self, now: Instant) {
        self.codes.retain(|_, grant| grant.expires > now);
        self.access
            .retain(|_, grant| grant.expires + Duration::from_secs(3600) > now);
    }
}

fn random_token(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let data: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
    hex::encode(data)
}
