//! `lakebundle credential KEY`: a fresh database credential and how to
//! connect with it. KEY is a `database_instances` resource key of the
//! bundle (when there is one), else an instance name.
//!
//! The login shared with `lakebundle psql` lives here: resolve the
//! instance, check it is AVAILABLE, mint a credential
//! (`POST /api/2.0/database/credentials`) for the current user, whose
//! Postgres role is their `userName` (email or service principal id).

use std::path::Path;

use serde_json::{json, Value};

use super::args::{CredentialArgs, GlobalArgs, OutputFormat};
use super::error::CliError;
use super::{context, hint, output, Exit};
use crate::api::{Client, Method};
use crate::resources::{kind_impl, Kind, ResourceAddr};
use lakebundle_emulator::RunningEmulator;

/// Everything needed to log in to an instance.
pub(super) struct DbLogin {
    pub instance: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub token: String,
    pub expiration_time: String,
    pub sslmode: &'static str,
}

impl DbLogin {
    /// `postgresql://user:token@host:port/db?sslmode=...` (the token in it, on purpose).
    pub fn uri(&self) -> String {
        format!(
            "postgresql://{}:{}@{}:{}/{}?sslmode={}",
            encode(&self.user),
            encode(&self.token),
            self.host,
            self.port,
            encode(&self.database),
            self.sslmode
        )
    }

    /// libpq key/value connection string without the password.
    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} dbname={} user={} sslmode={}",
            quote_conninfo(&self.host),
            self.port,
            quote_conninfo(&self.database),
            quote_conninfo(&self.user),
            self.sslmode
        )
    }
}

/// Everything but RFC 3986 unreserved characters is encoded.
const URI_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode for a URI user, password or path segment.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, URI_PART).to_string()
}

fn quote_conninfo(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// `host` or `host:port` (what `read_write_dns` holds) → host and port.
pub(super) fn split_dns(dns: &str) -> (String, u16) {
    match dns.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h.to_string(), port),
            Err(_) => (dns.to_string(), 5432),
        },
        _ => (dns.to_string(), 5432),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A bundle root is in reach (`-C`, `DATABRICKS_BUNDLE_ROOT`, or an ancestor).
fn bundle_present(g: &GlobalArgs) -> bool {
    let has_root = |d: &Path| {
        crate::config::load::ROOT_FILES
            .iter()
            .any(|f| d.join(f).is_file())
    };
    if let Some(d) = &g.dir {
        return has_root(d);
    }
    if let Some(d) = std::env::var_os("DATABRICKS_BUNDLE_ROOT").filter(|d| !d.is_empty()) {
        return has_root(Path::new(&d));
    }
    std::env::current_dir().is_ok_and(|cwd| cwd.ancestors().any(has_root))
}

/// The instance KEY stands for in the bundle: its `name`, when KEY is a
/// `database_instances` key (or address) or an instance name of the bundle;
/// None when the bundle does not know KEY (it may name an instance outside
/// it); an error when KEY is a resource of another kind.
fn instance_in_bundle(
    session: &context::Session,
    key: &str,
) -> Result<Option<(String, ResourceAddr)>, CliError> {
    let resources = &session.bundle.resources;
    let name_of = |addr: &ResourceAddr| {
        resources
            .get(addr)
            .and_then(|r| r.value.get("name").and_then(Value::as_str))
            .unwrap_or(&addr.key)
            .to_string()
    };
    // Kinds `credential` can open a session on (database instances).
    let access = |a: &ResourceAddr| a.kind.info().database_access;
    let parsed = ResourceAddr::parse(key);
    let by_key = match &parsed {
        Some(addr) => resources.get_key_value(addr).map(|(a, _)| a),
        None => resources.keys().find(|a| access(a) && a.key == key),
    };
    if let Some(addr) = by_key.filter(|a| access(a)) {
        return Ok(Some((name_of(addr), addr.clone())));
    }
    if let Some(by_name) = resources.keys().find(|a| access(a) && name_of(a) == key) {
        return Ok(Some((key.to_string(), by_name.clone())));
    }
    let other = match &parsed {
        Some(addr) if !access(addr) => resources.contains_key(addr).then(|| addr.clone()),
        _ => resources.keys().find(|a| a.key == key).cloned(),
    };
    if let Some(other) = other {
        return Err(CliError::user(format!(
            "{other} is a {}, not a database instance",
            other.kind.noun()
        ))
        .with_help(crate::ops::run::suggest(
            &other.key,
            instance_keys(session).iter().map(String::as_str),
            "database instances",
        )));
    }
    Ok(None)
}

/// The `database_instances` keys of the bundle.
fn instance_keys(session: &context::Session) -> Vec<String> {
    session
        .bundle
        .resources
        .keys()
        .filter(|a| a.kind.info().database_access)
        .map(|a| a.key.clone())
        .collect()
}

/// The workspace, the instance name KEY stands for, and the current user.
pub(super) struct Target {
    pub client: Client,
    pub instance: String,
    pub user: String,
    /// The bundle resource KEY named, if any.
    addr: Option<ResourceAddr>,
    /// What KEY could have meant (bundle instance keys), for did-you-mean.
    bundle_keys: Vec<String>,
    /// `lakebundle <flags> deploy`, for "not deployed" hints.
    deploy_hint: String,
    session: Option<context::Session>,
    local: Option<RunningEmulator>,
    /// KEY is a resource of a kind with its own login (a postgres endpoint):
    /// the kind and the remote id.
    connect: Option<(Kind, String)>,
}

/// The connectable kind whose full remote names look like `key`
/// (`projects/p/branches/b/endpoints/e`: a postgres endpoint).
fn remote_name_kind(key: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| {
        let imp = kind_impl(*k);
        imp.connectable() && imp.is_remote_name(key)
    })
}

/// The bundle resource KEY names (key or address) when its kind has its own
/// login ([`crate::resources::ResourceKind::connectable`]).
fn connectable_in_bundle(session: &context::Session, key: &str) -> Option<ResourceAddr> {
    let connectable = |k: Kind| kind_impl(k).connectable();
    let resources = &session.bundle.resources;
    if let Some(addr) = ResourceAddr::parse(key) {
        if connectable(addr.kind) && resources.contains_key(&addr) {
            return Some(addr);
        }
    }
    resources
        .keys()
        .find(|a| a.key == key && connectable(a.kind))
        .cloned()
}

impl Target {
    pub async fn resolve(g: &GlobalArgs, key: &str) -> Result<Target, CliError> {
        let deploy_hint = hint::command(g, &["deploy"]);
        if bundle_present(g) {
            let session = context::open(g).await?;
            if let Some(addr) = connectable_in_bundle(&session, key) {
                let id = match session.state().await {
                    Ok(store) => store.get(&addr).map(|rs| rs.id),
                    Err(e) => {
                        session.close().await;
                        return Err(e);
                    }
                };
                let Some(id) = id else {
                    session.close().await;
                    return Err(CliError::user(format!("{addr} is not deployed"))
                        .with_help(format!("deploy it first with `{deploy_hint}`")));
                };
                return Ok(Target {
                    client: session.client.clone(),
                    instance: id.clone(),
                    user: session.user.user_name.clone(),
                    addr: Some(addr.clone()),
                    bundle_keys: vec![],
                    deploy_hint,
                    session: Some(session),
                    local: None,
                    connect: Some((addr.kind, id)),
                });
            }
            if let Some(kind) = remote_name_kind(key) {
                return Ok(Target {
                    client: session.client.clone(),
                    instance: key.to_string(),
                    user: session.user.user_name.clone(),
                    addr: None,
                    bundle_keys: vec![],
                    deploy_hint,
                    session: Some(session),
                    local: None,
                    connect: Some((kind, key.to_string())),
                });
            }
            let found = match instance_in_bundle(&session, key) {
                Ok(f) => f,
                Err(e) => {
                    session.close().await;
                    return Err(e);
                }
            };
            let (instance, addr) = match found {
                Some((name, addr)) => (name, Some(addr)),
                None => (key.to_string(), None),
            };
            return Ok(Target {
                client: session.client.clone(),
                instance,
                user: session.user.user_name.clone(),
                addr,
                bundle_keys: instance_keys(&session),
                deploy_hint,
                session: Some(session),
                local: None,
                connect: None,
            });
        }
        let (client, local) = context::bare_client(g).await?;
        let user = match context::current_user(&client).await {
            Ok(u) => u.user_name,
            Err(e) => {
                if let Some(emu) = local {
                    emu.detach().await;
                }
                return Err(e);
            }
        };
        let connect = remote_name_kind(key).map(|kind| (kind, key.to_string()));
        Ok(Target {
            client,
            instance: key.to_string(),
            user,
            addr: None,
            bundle_keys: vec![],
            deploy_hint,
            session: None,
            local,
            connect,
        })
    }

    /// Stop whatever the command started (the `--local` workspace).
    pub async fn close(self) {
        if let Some(s) = self.session {
            s.close().await;
        }
        if let Some(emu) = self.local {
            emu.detach().await;
        }
    }

    /// The instance is not in the workspace: say which, and what was meant.
    async fn missing(&self) -> CliError {
        if let Some(addr) = &self.addr {
            return CliError::user(format!(
                "{addr} (database instance {:?}) is not deployed",
                self.instance
            ))
            .with_help(format!("deploy it first with `{}`", self.deploy_hint));
        }
        let mut candidates = self.bundle_keys.clone();
        let list = crate::api::list_all(
            &self.client,
            "/api/2.0/database/instances",
            &[("page_size", "100".into())],
            "database_instances",
        )
        .await;
        if let Ok(list) = list {
            candidates.extend(
                list.iter()
                    .filter_map(|i| i.get("name").and_then(Value::as_str))
                    .map(str::to_string),
            );
        }
        candidates.sort();
        candidates.dedup();
        let where_ = if self.session.is_some() {
            "in the bundle or the workspace"
        } else {
            "in the workspace"
        };
        CliError::user(format!("no database instance {:?} {where_}", self.instance)).with_help(
            crate::ops::run::suggest(
                &self.instance,
                candidates.iter().map(String::as_str),
                "database instances",
            ),
        )
    }

    /// Log in through the resource kind's own `connect` (postgres endpoints).
    async fn kind_login(&self, kind: Kind, id: &str, database: &str) -> Result<DbLogin, CliError> {
        let what = match &self.addr {
            Some(addr) => format!("{addr} ({id})"),
            None => format!("{} {id:?}", kind.noun()),
        };
        let imp = kind_impl(kind);
        let conn = match imp.connect(&self.client, id).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => {
                let help = if self.addr.is_some() {
                    format!("deploy it with `{}`", self.deploy_hint)
                } else {
                    "check the name: projects/<project>/branches/<branch>/endpoints/<endpoint>"
                        .to_string()
                };
                return Err(
                    CliError::user(format!("{what} does not exist in the workspace"))
                        .with_help(help),
                );
            }
            Err(crate::api::ApiError::Other {
                error_code,
                message,
                ..
            }) if error_code == "NOT_READY" => {
                return Err(CliError::user(message).with_help(
                    "wait for the endpoint to finish starting (or re-enable it with `disabled: false`) and try again",
                ));
            }
            Err(e) => return Err(CliError::api(&what, &e)),
        };
        let (host, port) = split_dns(&conn.host);
        let sslmode = if is_loopback(&host) {
            "prefer"
        } else {
            "require"
        };
        Ok(DbLogin {
            instance: id.to_string(),
            host,
            port,
            user: self.user.clone(),
            database: database.to_string(),
            token: conn.token,
            expiration_time: conn.expire_time,
            sslmode,
        })
    }

    /// Check the instance is AVAILABLE and mint a credential for it.
    pub async fn login(&self, database: &str) -> Result<DbLogin, CliError> {
        if let Some((kind, id)) = &self.connect {
            return self.kind_login(*kind, id, database).await;
        }
        let what = format!("database instance {:?}", self.instance);
        let path = format!(
            "/api/2.0/database/instances/{}",
            crate::api::seg(&self.instance)
        );
        let inst = match self.client.call(Method::GET, &path, &[], None).await {
            Ok(i) => i,
            Err(e) if e.is_not_found() => return Err(self.missing().await),
            Err(e) => return Err(CliError::api(&what, &e)),
        };
        let state = inst
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN");
        if state != "AVAILABLE" {
            return Err(CliError::user(format!(
                "{what} is {state}; it must be AVAILABLE to connect"
            ))
            .with_help("wait for it to start (a stopped instance starts when `stopped: false` is deployed)"));
        }
        let Some(dns) = inst
            .get("read_write_dns")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        else {
            return Err(CliError::remote(format!("{what} has no read_write_dns")));
        };
        let (host, port) = split_dns(dns);
        let body = json!({
            "request_id": uuid::Uuid::new_v4().to_string(),
            "instance_names": [self.instance],
        });
        let cred = self
            .client
            .call(
                Method::POST,
                "/api/2.0/database/credentials",
                &[],
                Some(&body),
            )
            .await
            .map_err(|e| CliError::api(format!("generating a credential for {what}"), &e))?;
        let Some(token) = cred.get("token").and_then(Value::as_str) else {
            return Err(CliError::remote("the credential response has no token"));
        };
        let sslmode = if is_loopback(&host) {
            "prefer"
        } else {
            "require"
        };
        Ok(DbLogin {
            instance: self.instance.clone(),
            host,
            port,
            user: self.user.clone(),
            database: database.to_string(),
            token: token.to_string(),
            expiration_time: cred
                .get("expiration_time")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            sslmode,
        })
    }
}

pub fn run(g: &GlobalArgs, a: &CredentialArgs) -> Result<Exit, CliError> {
    context::runtime()?.block_on(async {
        let target = Target::resolve(g, &a.key).await?;
        let login = target.login(&a.database).await;
        target.close().await;
        let login = login?;
        if g.output == OutputFormat::Json {
            output::print_json(&json!({
                "instance": login.instance,
                "host": login.host,
                "port": login.port,
                "user": login.user,
                "database": login.database,
                "token": login.token,
                "expiration_time": login.expiration_time,
                "connection_string": login.uri(),
            }))?;
        } else {
            output::out(&format!(
                "instance:   {}\nhost:       {}\nport:       {}\nuser:       {}\ndatabase:   {}\nexpires:    {}\ntoken:      {}\nconnect:    psql \"{}\"\n",
                login.instance,
                login.host,
                login.port,
                login.user,
                login.database,
                login.expiration_time,
                login.token,
                login.uri()
            ))?;
        }
        Ok(Exit::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_pick_their_kind() {
        assert_eq!(
            remote_name_kind("projects/p/branches/b/endpoints/e"),
            Some(Kind::PostgresEndpoints)
        );
        for not in [
            "projects/p/branches/b",
            "projects/p/branches//endpoints/e",
            "projects/p/branches/b/endpoints/e/x",
            "my-instance",
        ] {
            assert_eq!(remote_name_kind(not), None, "{not}");
        }
    }

    #[test]
    fn dns_with_and_without_port() {
        assert_eq!(split_dns("127.0.0.3"), ("127.0.0.3".into(), 5432));
        assert_eq!(split_dns("127.0.0.1:6001"), ("127.0.0.1".into(), 6001));
        assert_eq!(
            split_dns("instance-1.database.example.com"),
            ("instance-1.database.example.com".into(), 5432)
        );
    }

    #[test]
    fn uri_encodes_user_and_token() {
        let l = DbLogin {
            instance: "i".into(),
            host: "127.0.0.2".into(),
            port: 5432,
            user: "alice@company.com".into(),
            database: "databricks_postgres".into(),
            token: "a/b+c".into(),
            expiration_time: String::new(),
            sslmode: "prefer",
        };
        assert_eq!(l.uri(), "postgresql://alice%40company.com:a%2Fb%2Bc@127.0.0.2:5432/databricks_postgres?sslmode=prefer");
        assert_eq!(l.conninfo(), "host=127.0.0.2 port=5432 dbname=databricks_postgres user=alice@company.com sslmode=prefer");
        assert!(!l.conninfo().contains("a/b+c"));
    }
}
