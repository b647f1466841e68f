//! Authentication and configuration resolution (reference §3): explicit
//! options, environment, `~/.databrickscfg` profiles, the bundle's
//! `workspace.host` / `workspace.profile`; PAT and OAuth M2M.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::auth::{OAuthServerMetadata, TokenResponse};

/// A secret string (token, client secret, password). Debug and Display print
/// `****`; the value is only reachable through [`Secret::expose`]. It
/// serializes as the plain string because it has to go on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret value. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Everything auth resolution may look at. `env` is the process environment
/// (or a test's fake one): resolution never reads `std::env` itself.
#[derive(Clone, Default)]
pub struct AuthOptions {
    /// Explicit host (highest precedence).
    pub host: Option<String>,
    /// Explicit profile (`-p`).
    pub profile: Option<String>,
    pub token: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Explicit config file (else `DATABRICKS_CONFIG_FILE`, else `~/.databrickscfg`).
    pub config_file: Option<PathBuf>,
    pub env: HashMap<String, String>,
    /// The bundle's `workspace.host` (lowest precedence for the host).
    pub bundle_host: Option<String>,
    /// The bundle's `workspace.profile` (after `-p` and `DATABRICKS_CONFIG_PROFILE`).
    pub bundle_profile: Option<String>,
}

impl fmt::Debug for AuthOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // env may hold DATABRICKS_TOKEN: show keys only.
        let mut env_keys: Vec<&String> = self.env.keys().collect();
        env_keys.sort();
        f.debug_struct("AuthOptions")
            .field("host", &self.host)
            .field("profile", &self.profile)
            .field("token", &self.token)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("config_file", &self.config_file)
            .field("env_keys", &env_keys)
            .field("bundle_host", &self.bundle_host)
            .field("bundle_profile", &self.bundle_profile)
            .finish()
    }
}

impl AuthOptions {
    /// Options with `env` taken from the process environment (only the
    /// variables resolution reads).
    pub fn from_process_env() -> AuthOptions {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("DATABRICKS_") || k == "HOME" || k == "USERPROFILE")
            .collect();
        AuthOptions {
            env,
            ..AuthOptions::default()
        }
    }

    fn env_var(&self, key: &str) -> Option<String> {
        self.env
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// Why no client could be configured. Messages name what was tried and never
/// contain secret values.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AuthError {
    #[error("no workspace host: set DATABRICKS_HOST, add workspace.host to databricks.yml, use a profile (-p) — or use --local\n  tried: {}", .tried.join("; "))]
    #[diagnostic(code(lakebundle::auth::no_host))]
    NoHost { tried: Vec<String> },
    #[error("no credentials for {host}: set DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, or use a ~/.databrickscfg profile (-p) with token or client_id/client_secret\n  tried: {}", .tried.join("; "))]
    #[diagnostic(code(lakebundle::auth::no_credentials))]
    NoCredentials { host: String, tried: Vec<String> },
    #[error("profile {profile:?} (from {origin}) not found in {}{}", .file.display(), available_suffix(.available))]
    #[diagnostic(code(lakebundle::auth::profile_not_found))]
    ProfileNotFound {
        profile: String,
        origin: String,
        file: PathBuf,
        available: Vec<String>,
    },
    #[error("cannot read config file {}: {message}", .file.display())]
    #[diagnostic(code(lakebundle::auth::config_file))]
    ConfigFile { file: PathBuf, message: String },
    #[error("more than one authorization method configured: oauth and pat (token from {pat_origin}, client id from {oauth_origin}); set auth_type / DATABRICKS_AUTH_TYPE to choose")]
    #[diagnostic(code(lakebundle::auth::ambiguous))]
    Ambiguous {
        pat_origin: String,
        oauth_origin: String,
    },
    #[error(
        "incomplete OAuth M2M credentials: {present} is set (from {origin}) but {missing} is not"
    )]
    #[diagnostic(code(lakebundle::auth::incomplete_m2m))]
    IncompleteM2m {
        present: String,
        missing: String,
        origin: String,
    },
    #[error("unsupported auth_type {auth_type:?} (from {origin}); supported: pat, oauth-m2m")]
    #[diagnostic(code(lakebundle::auth::unsupported_auth_type))]
    UnsupportedAuthType { auth_type: String, origin: String },
    #[error("auth_type {auth_type} (from {origin}) requires {missing}")]
    #[diagnostic(code(lakebundle::auth::auth_type_incomplete))]
    AuthTypeIncomplete {
        auth_type: String,
        origin: String,
        missing: String,
    },
    #[error("invalid host {host:?} (from {origin}): {message}")]
    #[diagnostic(code(lakebundle::auth::invalid_host))]
    InvalidHost {
        host: String,
        origin: String,
        message: String,
    },
    #[error("profile {profile:?} has host {profile_host} but the bundle's workspace.host is {bundle_host}")]
    #[diagnostic(code(lakebundle::auth::host_mismatch))]
    HostMismatch {
        profile: String,
        profile_host: String,
        bundle_host: String,
    },
    #[error("several profiles in {} match host {host}: {}; choose one with -p", .file.display(), .profiles.join(", "))]
    #[diagnostic(code(lakebundle::auth::ambiguous_profile))]
    AmbiguousProfile {
        host: String,
        file: PathBuf,
        profiles: Vec<String>,
    },
    #[error("cannot build the HTTP client: {0}")]
    #[diagnostic(code(lakebundle::auth::http_client))]
    HttpClient(String),
}

fn available_suffix(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (available: {})", available.join(", "))
    }
}

/// Resolved credentials.
#[derive(Clone, Debug, PartialEq)]
pub enum Credentials {
    /// Personal access token: `Authorization: Bearer <token>`.
    Pat(Secret),
    /// OAuth machine-to-machine (client credentials).
    OAuthM2m {
        client_id: String,
        client_secret: Secret,
        /// Authorization-server metadata URL, when configured.
        discovery_url: Option<String>,
        scopes: String,
    },
}

impl Credentials {
    /// The SDK's auth_type name.
    pub fn auth_type(&self) -> &'static str {
        match self {
            Credentials::Pat(_) => "pat",
            Credentials::OAuthM2m { .. } => "oauth-m2m",
        }
    }
}

/// The outcome of resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedAuth {
    /// Normalised host (`https://x`, no trailing slash, no `:443`).
    pub host: String,
    pub credentials: Credentials,
    /// Sent as `X-Databricks-Workspace-Id` when known.
    pub workspace_id: Option<String>,
    /// Where the host and credentials came from, for messages.
    pub origin: Vec<String>,
}

/// Normalise a host per §1: add `https://` if no scheme, strip `:443` /
/// default ports, no trailing slash. `http://127.0.0.1:PORT` is unchanged.
pub fn normalize_host(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty host".into());
    }
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported scheme {:?} (use https:// or http://)",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("no host name")?;
    if url.username() != "" || url.password().is_some() {
        return Err("credentials in the host URL are not supported".into());
    }
    // `url` already drops the scheme's default port (443 for https).
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    Ok(out)
}

/// One attribute value and where it came from.
#[derive(Clone)]
struct Attr<T> {
    value: T,
    origin: String,
}

#[derive(Default)]
struct Attrs {
    host: Option<Attr<String>>,
    token: Option<Attr<Secret>>,
    client_id: Option<Attr<String>>,
    client_secret: Option<Attr<Secret>>,
    auth_type: Option<Attr<String>>,
    discovery_url: Option<Attr<String>>,
    workspace_id: Option<Attr<String>>,
}

impl Attrs {
    fn any_auth_or_host(&self) -> bool {
        self.host.is_some()
            || self.token.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
    }

    /// Fill unset attributes from `get(key)`.
    fn fill(&mut self, origin: &str, get: impl Fn(&str) -> Option<String>) {
        fn set<T>(
            slot: &mut Option<Attr<T>>,
            v: Option<String>,
            origin: &str,
            wrap: impl Fn(String) -> T,
        ) {
            if slot.is_none() {
                if let Some(v) = v {
                    *slot = Some(Attr {
                        value: wrap(v),
                        origin: origin.to_string(),
                    });
                }
            }
        }
        set(&mut self.host, get("host"), origin, |v| v);
        set(&mut self.token, get("token"), origin, Secret);
        set(&mut self.client_id, get("client_id"), origin, |v| v);
        set(
            &mut self.client_secret,
            get("client_secret"),
            origin,
            Secret,
        );
        set(&mut self.auth_type, get("auth_type"), origin, |v| v);
        set(&mut self.discovery_url, get("discovery_url"), origin, |v| v);
        set(&mut self.workspace_id, get("workspace_id"), origin, |v| v);
    }
}

const ENV_KEYS: [(&str, &str); 7] = [
    ("host", "DATABRICKS_HOST"),
    ("token", "DATABRICKS_TOKEN"),
    ("client_id", "DATABRICKS_CLIENT_ID"),
    ("client_secret", "DATABRICKS_CLIENT_SECRET"),
    ("auth_type", "DATABRICKS_AUTH_TYPE"),
    ("discovery_url", "DATABRICKS_DISCOVERY_URL"),
    ("workspace_id", "DATABRICKS_WORKSPACE_ID"),
];

/// Resolve host and credentials (reference §3.2).
pub fn resolve(opts: &AuthOptions) -> Result<ResolvedAuth, AuthError> {
    let mut tried: Vec<String> = Vec::new();
    let mut attrs = Attrs::default();

    // 1. explicit options
    let nonempty = |s: &Option<String>| {
        s.as_ref()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    attrs.fill("explicit option", |k| match k {
        "host" => nonempty(&opts.host),
        "token" => opts
            .token
            .as_ref()
            .map(|s| s.0.clone())
            .filter(|v| !v.is_empty()),
        "client_id" => nonempty(&opts.client_id),
        "client_secret" => opts
            .client_secret
            .as_ref()
            .map(|s| s.0.clone())
            .filter(|v| !v.is_empty()),
        _ => None,
    });
    tried.push("explicit options".into());

    // 2. environment
    for (attr, var) in ENV_KEYS {
        attrs.fill(&format!("${var}"), |k| {
            if k == attr {
                opts.env_var(var)
            } else {
                None
            }
        });
    }
    tried.push(
        "environment (DATABRICKS_HOST, DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/SECRET)".into(),
    );

    // Profile request: -p, then DATABRICKS_CONFIG_PROFILE, then workspace.profile.
    let requested: Option<(String, String)> = nonempty(&opts.profile)
        .map(|p| (p, "-p".to_string()))
        .or_else(|| {
            opts.env_var("DATABRICKS_CONFIG_PROFILE")
                .map(|p| (p, "$DATABRICKS_CONFIG_PROFILE".into()))
        })
        .or_else(|| nonempty(&opts.bundle_profile).map(|p| (p, "workspace.profile".into())));

    let bundle_host = match nonempty(&opts.bundle_host) {
        Some(h) => Some(
            normalize_host(&h).map_err(|message| AuthError::InvalidHost {
                host: h.clone(),
                origin: "workspace.host".into(),
                message,
            })?,
        ),
        None => None,
    };

    // 3. config file — skipped when nothing asks for a profile and 1–2 already
    // configured a host or credentials (the SDK rule).
    let config_path = opts
        .config_file
        .clone()
        .or_else(|| opts.env_var("DATABRICKS_CONFIG_FILE").map(PathBuf::from))
        .or_else(|| {
            opts.env_var("HOME")
                .or_else(|| opts.env_var("USERPROFILE"))
                .map(|h| Path::new(&h).join(".databrickscfg"))
        });
    if requested.is_none() && attrs.any_auth_or_host() {
        tried.push(
            "config file skipped (host or credentials already set by options/environment)".into(),
        );
    } else if let Some(path) = &config_path {
        apply_config_file(
            path,
            requested.as_ref(),
            bundle_host.as_deref(),
            &mut attrs,
            &mut tried,
        )?;
    } else if let Some((profile, origin)) = requested {
        return Err(AuthError::ProfileNotFound {
            profile,
            origin,
            file: PathBuf::from("~/.databrickscfg"),
            available: vec![],
        });
    }

    // 4. bundle workspace.host
    if attrs.host.is_none() {
        if let Some(h) = &bundle_host {
            attrs.host = Some(Attr {
                value: h.clone(),
                origin: "workspace.host".into(),
            });
        } else {
            tried.push("workspace.host (not set)".into());
        }
    }

    let Some(host_attr) = attrs.host.clone() else {
        return Err(AuthError::NoHost { tried });
    };
    let host = normalize_host(&host_attr.value).map_err(|message| AuthError::InvalidHost {
        host: host_attr.value.clone(),
        origin: host_attr.origin.clone(),
        message,
    })?;

    let credentials = pick_credentials(&attrs, &host, tried)?;
    let mut origin = vec![format!("host from {}", host_attr.origin)];
    match &credentials {
        Credentials::Pat(_) => origin.extend(
            attrs
                .token
                .as_ref()
                .map(|a| format!("token from {}", a.origin)),
        ),
        Credentials::OAuthM2m { .. } => origin.extend(
            attrs
                .client_id
                .as_ref()
                .map(|a| format!("client id from {}", a.origin)),
        ),
    }
    Ok(ResolvedAuth {
        host,
        credentials,
        workspace_id: attrs.workspace_id.map(|a| a.value),
        origin,
    })
}

fn apply_config_file(
    path: &Path,
    requested: Option<&(String, String)>,
    bundle_host: Option<&str>,
    attrs: &mut Attrs,
    tried: &mut Vec<String>,
) -> Result<(), AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some((profile, origin)) = requested {
                return Err(AuthError::ProfileNotFound {
                    profile: profile.clone(),
                    origin: origin.clone(),
                    file: path.to_path_buf(),
                    available: vec![],
                });
            }
            tried.push(format!("config file {} (absent)", path.display()));
            return Ok(());
        }
        Err(e) => {
            return Err(AuthError::ConfigFile {
                file: path.to_path_buf(),
                message: e.to_string(),
            })
        }
    };
    let ini = parse_ini(&text).map_err(|message| AuthError::ConfigFile {
        file: path.to_path_buf(),
        message,
    })?;
    let profiles: Vec<String> = ini
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n != "__settings__")
        .collect();
    let section = |name: &str| ini.iter().find(|(n, _)| n == name).map(|(_, kv)| kv);

    let chosen: Option<(String, &HashMap<String, String>)> =
        if let Some((profile, origin)) = requested {
            let Some(kv) = section(profile) else {
                return Err(AuthError::ProfileNotFound {
                    profile: profile.clone(),
                    origin: origin.clone(),
                    file: path.to_path_buf(),
                    available: profiles,
                });
            };
            if let (Some(bh), Some(ph)) = (bundle_host, kv.get("host")) {
                let ph = normalize_host(ph).unwrap_or_else(|_| ph.clone());
                if ph != bh {
                    return Err(AuthError::HostMismatch {
                        profile: profile.clone(),
                        profile_host: ph,
                        bundle_host: bh.to_string(),
                    });
                }
            }
            Some((profile.clone(), kv))
        } else if let Some(bh) = bundle_host {
            // Like the Databricks CLI: the profile whose host matches the bundle's.
            let matching: Vec<&(String, HashMap<String, String>)> = ini
                .iter()
                .filter(|(n, kv)| {
                    n != "__settings__"
                        && kv
                            .get("host")
                            .and_then(|h| normalize_host(h).ok())
                            .as_deref()
                            == Some(bh)
                })
                .collect();
            match matching.as_slice() {
                [] => {
                    tried.push(format!(
                        "config file {}: no profile with host {bh}",
                        path.display()
                    ));
                    None
                }
                [(name, kv)] => Some((name.clone(), kv)),
                many => {
                    return Err(AuthError::AmbiguousProfile {
                        host: bh.to_string(),
                        file: path.to_path_buf(),
                        profiles: many.iter().map(|(n, _)| n.clone()).collect(),
                    })
                }
            }
        } else {
            let default = section("__settings__")
                .and_then(|s| s.get("default_profile"))
                .cloned();
            match default {
                Some(name) => match section(&name) {
                    Some(kv) => Some((name, kv)),
                    None => {
                        return Err(AuthError::ProfileNotFound {
                            profile: name,
                            origin: "[__settings__] default_profile".into(),
                            file: path.to_path_buf(),
                            available: profiles,
                        })
                    }
                },
                None => match section("DEFAULT") {
                    Some(kv) => Some(("DEFAULT".to_string(), kv)),
                    None => {
                        tried.push(format!(
                            "config file {}: no DEFAULT profile",
                            path.display()
                        ));
                        None
                    }
                },
            }
        };
    if let Some((name, kv)) = chosen {
        let origin = format!("profile {name} in {}", path.display());
        attrs.fill(&origin, |k| kv.get(k).cloned().filter(|v| !v.is_empty()));
        tried.push(origin);
    }
    Ok(())
}

/// Sections in file order, each with its keys. Comments start with `#` or
/// `;`; `key = value` or `key: value`; values unquoted and trimmed.
/// INI sections in file order: (name, keys).
type Sections = Vec<(String, HashMap<String, String>)>;

fn parse_ini(text: &str) -> Result<Sections, String> {
    let mut sections: Sections = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: unterminated section header", i + 1))?
                .trim()
                .to_string();
            // A repeated section merges into the first (later keys win).
            if !sections.iter().any(|(n, _)| *n == name) {
                sections.push((name, HashMap::new()));
            }
            continue;
        }
        let Some(pos) = line.find(['=', ':']) else {
            return Err(format!("line {}: expected `key = value`", i + 1));
        };
        let key = line[..pos].trim().to_ascii_lowercase();
        let value = line[pos + 1..].trim().to_string();
        let Some(name) = sections.last().map(|(n, _)| n.clone()) else {
            return Err(format!(
                "line {}: key {key:?} outside of any [profile] section",
                i + 1
            ));
        };
        if let Some((_, kv)) = sections.iter_mut().find(|(n, _)| *n == name) {
            kv.insert(key, value);
        }
    }
    Ok(sections)
}

fn pick_credentials(
    attrs: &Attrs,
    host: &str,
    tried: Vec<String>,
) -> Result<Credentials, AuthError> {
    let m2m = || -> Result<Option<Credentials>, AuthError> {
        match (&attrs.client_id, &attrs.client_secret) {
            (Some(id), Some(secret)) => Ok(Some(Credentials::OAuthM2m {
                client_id: id.value.clone(),
                client_secret: secret.value.clone(),
                discovery_url: attrs.discovery_url.as_ref().map(|a| a.value.clone()),
                scopes: "all-apis".into(),
            })),
            (Some(id), None) => Err(AuthError::IncompleteM2m {
                present: "client_id".into(),
                missing: "client_secret".into(),
                origin: id.origin.clone(),
            }),
            (None, Some(secret)) => Err(AuthError::IncompleteM2m {
                present: "client_secret".into(),
                missing: "client_id".into(),
                origin: secret.origin.clone(),
            }),
            (None, None) => Ok(None),
        }
    };
    let pat = attrs
        .token
        .as_ref()
        .map(|t| Credentials::Pat(t.value.clone()));
    if let Some(auth_type) = &attrs.auth_type {
        return match auth_type.value.as_str() {
            "pat" => pat.ok_or_else(|| AuthError::AuthTypeIncomplete {
                auth_type: "pat".into(),
                origin: auth_type.origin.clone(),
                missing: "a token".into(),
            }),
            "oauth-m2m" => m2m()?.ok_or_else(|| AuthError::AuthTypeIncomplete {
                auth_type: "oauth-m2m".into(),
                origin: auth_type.origin.clone(),
                missing: "client_id and client_secret".into(),
            }),
            other => Err(AuthError::UnsupportedAuthType {
                auth_type: other.to_string(),
                origin: auth_type.origin.clone(),
            }),
        };
    }
    match (pat, m2m()?) {
        (Some(_), Some(_)) => Err(AuthError::Ambiguous {
            pat_origin: attrs
                .token
                .as_ref()
                .map(|a| a.origin.clone())
                .unwrap_or_default(),
            oauth_origin: attrs
                .client_id
                .as_ref()
                .map(|a| a.origin.clone())
                .unwrap_or_default(),
        }),
        (Some(p), None) => Ok(p),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(AuthError::NoCredentials {
            host: host.to_string(),
            tried,
        }),
    }
}

// ---------------------------------------------------------------------------
// Token sources

/// A failure to obtain a token. `retryable` = nothing was applied and a later
/// attempt may succeed (connect error, 429, 503).
#[derive(Debug)]
pub(crate) struct TokenError {
    pub message: String,
    pub retryable: bool,
}

struct CachedToken {
    /// The full `Authorization` header value (`Bearer xyz`).
    header: Secret,
    refresh_at: Instant,
}

/// The M2M token source: discovers the token endpoint once, then caches the
/// token until shortly before it expires.
pub(crate) struct M2mTokenSource {
    host: String,
    client_id: String,
    client_secret: Secret,
    discovery_url: Option<String>,
    scopes: String,
    http: reqwest::Client,
    state: tokio::sync::Mutex<M2mState>,
}

#[derive(Default)]
struct M2mState {
    token_endpoint: Option<String>,
    cached: Option<CachedToken>,
}

impl M2mTokenSource {
    pub(crate) fn new(
        host: &str,
        client_id: String,
        client_secret: Secret,
        discovery_url: Option<String>,
        scopes: String,
        http: reqwest::Client,
    ) -> M2mTokenSource {
        M2mTokenSource {
            host: host.to_string(),
            client_id,
            client_secret,
            discovery_url,
            scopes,
            http,
            state: tokio::sync::Mutex::new(M2mState::default()),
        }
    }

    /// The `Authorization` header value, refreshing the token when needed.
    /// The mutex makes concurrent callers share one refresh.
    pub(crate) async fn header(&self) -> Result<Secret, TokenError> {
        let mut state = self.state.lock().await;
        if let Some(c) = &state.cached {
            if Instant::now() < c.refresh_at {
                return Ok(c.header.clone());
            }
        }
        let endpoint = match &state.token_endpoint {
            Some(e) => e.clone(),
            None => {
                let e = self.discover().await?;
                state.token_endpoint = Some(e.clone());
                e
            }
        };
        let token = self.fetch(&endpoint).await?;
        let lifetime = Duration::from_secs(token.expires_in.max(0) as u64);
        let header = Secret(format!(
            "{} {}",
            token_type(&token.token_type),
            token.access_token.expose()
        ));
        state.cached = Some(CachedToken {
            header: header.clone(),
            refresh_at: Instant::now() + lifetime - refresh_margin(lifetime),
        });
        Ok(header)
    }

    /// Drop the cached token (after a 401 with it).
    pub(crate) async fn invalidate(&self) {
        self.state.lock().await.cached = None;
    }

    /// Token endpoint: from the configured discovery URL, else the workspace
    /// `/oidc/.well-known/oauth-authorization-server`, else `{host}/oidc/v1/token`.
    async fn discover(&self) -> Result<String, TokenError> {
        let url = self.discovery_url.clone().unwrap_or_else(|| {
            format!("{}/oidc/.well-known/oauth-authorization-server", self.host)
        });
        let resp = self
            .http
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| net_error("reading OAuth metadata", &e))?;
                serde_json::from_slice::<OAuthServerMetadata>(&bytes)
                    .map(|m| m.token_endpoint)
                    .map_err(|e| TokenError {
                        message: format!("invalid OAuth metadata from {url}: {e}"),
                        retryable: false,
                    })
            }
            Ok(r) if is_transient(r.status().as_u16()) => Err(TokenError {
                message: format!("OAuth metadata {url}: HTTP {}", r.status().as_u16()),
                retryable: true,
            }),
            Ok(r) if self.discovery_url.is_some() => Err(TokenError {
                message: format!("OAuth metadata {url}: HTTP {}", r.status().as_u16()),
                retryable: false,
            }),
            // No metadata route: the conventional workspace token endpoint.
            Ok(_) => Ok(format!("{}/oidc/v1/token", self.host)),
            Err(e) => Err(net_error(&format!("OAuth metadata {url}"), &e)),
        }
    }

    async fn fetch(&self, endpoint: &str) -> Result<TokenResponse, TokenError> {
        let form = format!(
            "grant_type=client_credentials&scope={}",
            percent_encoding::utf8_percent_encode(&self.scopes, percent_encoding::NON_ALPHANUMERIC)
        );
        let resp = self
            .http
            .post(endpoint)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| net_error(&format!("token request to {endpoint}"), &e))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| net_error("reading token response", &e))?;
        if !(200..300).contains(&status) {
            let body = super::error::parse_error_body(status, &bytes);
            let code = if body.error_code.is_empty() {
                String::new()
            } else {
                format!("{}: ", body.error_code)
            };
            return Err(TokenError {
                message: format!(
                    "oauth-m2m token request to {endpoint} failed with HTTP {status}: {code}{}",
                    body.message
                ),
                retryable: is_transient(status),
            });
        }
        serde_json::from_slice::<TokenResponse>(&bytes).map_err(|e| TokenError {
            // serde's message names the field, never echoes the token value.
            message: format!("invalid token response from {endpoint}: {e}"),
            retryable: false,
        })
    }
}

fn is_transient(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

fn token_type(t: &str) -> &str {
    if t.eq_ignore_ascii_case("bearer") || t.is_empty() {
        "Bearer"
    } else {
        t
    }
}

/// Refresh a little before expiry: a quarter of the lifetime, at most 40 s
/// (so a 1-hour token refreshes at 59:20, a 4-second one at 3 s).
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(40))
}

fn net_error(what: &str, e: &reqwest::Error) -> TokenError {
    TokenError {
        message: format!("{what}: {}", super::describe_reqwest_error(e)),
        retryable: e.is_connect() || e.is_timeout(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn opts(env: &[(&str, &str)]) -> AuthOptions {
        AuthOptions {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..AuthOptions::default()
        }
    }

    fn cfg_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const CFG: &str = "\
; comment
[DEFAULT]
host  = https://default.cloud.databricks.com
token = dapi-default

[ci]
host          = dbc-ci.cloud.databricks.com:443/
client_id     = ci-id
client_secret = ci-secret

[local]
host = http://127.0.0.1:8123
token = dapi-local
";

    #[test]
    fn host_normalisation() {
        assert_eq!(
            normalize_host("dbc-1.cloud.databricks.com").unwrap(),
            "https://dbc-1.cloud.databricks.com"
        );
        assert_eq!(
            normalize_host("https://dbc-1.cloud.databricks.com:443/").unwrap(),
            "https://dbc-1.cloud.databricks.com"
        );
        assert_eq!(
            normalize_host("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_host("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_host("https://x.com:8443/prefix/").unwrap(),
            "https://x.com:8443/prefix"
        );
        assert!(normalize_host("").is_err());
        assert!(normalize_host("ftp://x").is_err());
        assert!(normalize_host("https://user:pw@x.com").is_err());
    }

    #[test]
    fn env_pat() {
        let r = resolve(&opts(&[
            ("DATABRICKS_HOST", "h.example.com/"),
            ("DATABRICKS_TOKEN", "dapi-1"),
        ]))
        .unwrap();
        assert_eq!(r.host, "https://h.example.com");
        assert_eq!(r.credentials, Credentials::Pat(Secret::new("dapi-1")));
        assert_eq!(r.credentials.auth_type(), "pat");
    }

    #[test]
    fn explicit_beats_env() {
        let mut o = opts(&[
            ("DATABRICKS_HOST", "env.example.com"),
            ("DATABRICKS_TOKEN", "env-tok"),
        ]);
        o.host = Some("http://127.0.0.1:9".into());
        o.token = Some(Secret::new("explicit-tok"));
        let r = resolve(&o).unwrap();
        assert_eq!(r.host, "http://127.0.0.1:9");
        assert_eq!(r.credentials, Credentials::Pat(Secret::new("explicit-tok")));
    }

    #[test]
    fn env_m2m() {
        let r = resolve(&opts(&[
            ("DATABRICKS_HOST", "http://127.0.0.1:1"),
            ("DATABRICKS_CLIENT_ID", "id"),
            ("DATABRICKS_CLIENT_SECRET", "sec"),
        ]))
        .unwrap();
        match r.credentials {
            Credentials::OAuthM2m {
                client_id,
                client_secret,
                scopes,
                discovery_url,
            } => {
                assert_eq!(client_id, "id");
                assert_eq!(client_secret.expose(), "sec");
                assert_eq!(scopes, "all-apis");
                assert_eq!(discovery_url, None);
            }
            other => panic!("expected m2m, got {other:?}"),
        }
    }

    #[test]
    fn pat_and_m2m_together_is_ambiguous_unless_auth_type() {
        let env = [
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_TOKEN", "t"),
            ("DATABRICKS_CLIENT_ID", "id"),
            ("DATABRICKS_CLIENT_SECRET", "sec"),
        ];
        let e = resolve(&opts(&env)).unwrap_err();
        assert!(matches!(e, AuthError::Ambiguous { .. }), "{e}");
        let mut with_type = env.to_vec();
        with_type.push(("DATABRICKS_AUTH_TYPE", "oauth-m2m"));
        assert_eq!(
            resolve(&opts(&with_type)).unwrap().credentials.auth_type(),
            "oauth-m2m"
        );
        with_type.pop();
        with_type.push(("DATABRICKS_AUTH_TYPE", "pat"));
        assert_eq!(
            resolve(&opts(&with_type)).unwrap().credentials.auth_type(),
            "pat"
        );
    }

    #[test]
    fn incomplete_m2m() {
        let e = resolve(&opts(&[
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_CLIENT_ID", "id"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("client_secret"), "{e}");
    }

    #[test]
    fn no_host_names_every_way() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(&opts(&[("HOME", dir.path().to_str().unwrap())])).unwrap_err();
        let msg = e.to_string();
        for needle in [
            "DATABRICKS_HOST",
            "workspace.host",
            "-p",
            "--local",
            "absent",
        ] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
    }

    #[test]
    fn no_credentials_names_what_was_tried() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(&opts(&[
            ("DATABRICKS_HOST", "h"),
            ("HOME", dir.path().to_str().unwrap()),
        ]))
        .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, AuthError::NoCredentials { .. }));
        assert!(
            msg.contains("DATABRICKS_TOKEN") && msg.contains("config file skipped"),
            "{msg}"
        );
    }

    #[test]
    fn default_profile_from_file() {
        let f = cfg_file(CFG);
        let r = resolve(&opts(&[(
            "DATABRICKS_CONFIG_FILE",
            f.path().to_str().unwrap(),
        )]))
        .unwrap();
        assert_eq!(r.host, "https://default.cloud.databricks.com");
        assert_eq!(r.credentials, Credentials::Pat(Secret::new("dapi-default")));
    }

    #[test]
    fn settings_default_profile() {
        let f = cfg_file(&format!("{CFG}\n[__settings__]\ndefault_profile = local\n"));
        let mut o = opts(&[]);
        o.config_file = Some(f.path().to_path_buf());
        assert_eq!(resolve(&o).unwrap().host, "http://127.0.0.1:8123");
    }

    #[test]
    fn explicit_profile_env_profile_and_bundle_profile() {
        let f = cfg_file(CFG);
        let path = f.path().to_str().unwrap();
        let mut o = opts(&[
            ("DATABRICKS_CONFIG_FILE", path),
            ("DATABRICKS_CONFIG_PROFILE", "local"),
        ]);
        assert_eq!(resolve(&o).unwrap().host, "http://127.0.0.1:8123");
        o.profile = Some("ci".into());
        let r = resolve(&o).unwrap();
        assert_eq!(r.host, "https://dbc-ci.cloud.databricks.com");
        assert_eq!(r.credentials.auth_type(), "oauth-m2m");
        let mut b = opts(&[("DATABRICKS_CONFIG_FILE", path)]);
        b.bundle_profile = Some("local".into());
        assert_eq!(resolve(&b).unwrap().host, "http://127.0.0.1:8123");
    }

    #[test]
    fn requested_profile_is_used_even_with_env_host_but_env_wins() {
        let f = cfg_file(CFG);
        let mut o = opts(&[
            ("DATABRICKS_CONFIG_FILE", f.path().to_str().unwrap()),
            ("DATABRICKS_TOKEN", "env-tok"),
        ]);
        o.profile = Some("local".into());
        let r = resolve(&o).unwrap();
        assert_eq!(r.host, "http://127.0.0.1:8123");
        assert_eq!(r.credentials, Credentials::Pat(Secret::new("env-tok")));
    }

    #[test]
    fn missing_profile_lists_available() {
        let f = cfg_file(CFG);
        let mut o = opts(&[("DATABRICKS_CONFIG_FILE", f.path().to_str().unwrap())]);
        o.profile = Some("nope".into());
        let msg = resolve(&o).unwrap_err().to_string();
        assert!(
            msg.contains("nope") && msg.contains("DEFAULT, ci, local") && msg.contains("-p"),
            "{msg}"
        );
    }

    #[test]
    fn bundle_host_picks_matching_profile_and_never_sends_other_hosts_token() {
        let f = cfg_file(CFG);
        let path = f.path().to_str().unwrap();
        let mut o = opts(&[("DATABRICKS_CONFIG_FILE", path)]);
        o.bundle_host = Some("http://127.0.0.1:8123/".into());
        let r = resolve(&o).unwrap();
        assert_eq!(r.credentials, Credentials::Pat(Secret::new("dapi-local")));
        // A host with no matching profile: DEFAULT's token is not used for it.
        o.bundle_host = Some("https://elsewhere.example.com".into());
        let e = resolve(&o).unwrap_err();
        assert!(
            matches!(e, AuthError::NoCredentials { ref host, .. } if host == "https://elsewhere.example.com"),
            "{e}"
        );
        // Explicit profile with another host: refused.
        o.profile = Some("ci".into());
        assert!(matches!(
            resolve(&o).unwrap_err(),
            AuthError::HostMismatch { .. }
        ));
    }

    #[test]
    fn bundle_host_with_env_token() {
        let mut o = opts(&[("DATABRICKS_TOKEN", "t")]);
        o.bundle_host = Some("dbc-9.cloud.databricks.com".into());
        let r = resolve(&o).unwrap();
        assert_eq!(r.host, "https://dbc-9.cloud.databricks.com");
        assert!(r.origin.iter().any(|s| s.contains("workspace.host")));
    }

    #[test]
    fn ini_errors_are_reported() {
        let f = cfg_file("host = x\n");
        let o = opts(&[("DATABRICKS_CONFIG_FILE", f.path().to_str().unwrap())]);
        assert!(matches!(
            resolve(&o).unwrap_err(),
            AuthError::ConfigFile { .. }
        ));
    }

    #[test]
    fn secrets_never_in_debug_or_errors() {
        let mut o = opts(&[
            ("DATABRICKS_TOKEN", "env-secret-token"),
            ("DATABRICKS_CLIENT_SECRET", "env-client-secret"),
        ]);
        o.token = Some(Secret::new("explicit-secret"));
        o.client_secret = Some(Secret::new("explicit-client-secret"));
        o.client_id = Some("id".into());
        let dbg = format!("{o:?}");
        for s in [
            "env-secret-token",
            "env-client-secret",
            "explicit-secret",
            "explicit-client-secret",
        ] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
        o.host = Some("h".into());
        let e = resolve(&o).unwrap_err();
        let msg = format!("{e} {e:?}");
        assert!(
            !msg.contains("secret-token") && !msg.contains("client-secret"),
            "{msg}"
        );
        let r = resolve(&opts(&[
            ("DATABRICKS_HOST", "h"),
            ("DATABRICKS_CLIENT_ID", "i"),
            ("DATABRICKS_CLIENT_SECRET", "s3cr3t-value"),
        ]))
        .unwrap();
        assert!(!format!("{r:?}").contains("s3cr3t-value"));
        assert_eq!(format!("{}", Secret::new("x")), "****");
    }

    #[test]
    fn refresh_margin_scales() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(40)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
    }
}
