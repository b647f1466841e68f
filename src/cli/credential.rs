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
use super::{context, output, Exit};
use crate::api::{AuthOptions, Client, ClientConfig, Method, Secret};
use crate::emulator::{EmulatorConfig, RunningEmulator};

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

/// A workspace without a bundle: `--local` or the usual auth chain.
async fn bare_client(g: &GlobalArgs) -> Result<(Client, Option<RunningEmulator>), Exit> {
    let fail = |e: &dyn std::fmt::Display| {
        output::error(e);
        Exit::Error
    };
    if g.local {
        let data_dir = crate::emulator::default_data_dir().map_err(|e| fail(&e))?;
        let emu = crate::emulator::start(EmulatorConfig::local(data_dir))
            .await
            .map_err(|e| fail(&format!("--local: cannot start the local workspace: {e}")))?;
        let client =
            Client::with_token(emu.url(), Secret::new(emu.token()), ClientConfig::default())
                .map_err(|e| fail(&e))?;
        return Ok((client, Some(emu)));
    }
    let opts = AuthOptions {
        profile: g.profile.clone(),
        ..AuthOptions::from_process_env()
    };
    let client = Client::from_options(&opts, ClientConfig::default()).map_err(|e| fail(&e))?;
    Ok((client, None))
}

/// The workspace, the instance name KEY stands for, and the current user.
pub(super) struct Target {
    pub client: Client,
    pub instance: String,
    pub user: String,
    session: Option<context::Session>,
    local: Option<RunningEmulator>,
}

impl Target {
    pub async fn resolve(g: &GlobalArgs, key: &str) -> Result<Target, Exit> {
        if bundle_present(g) {
            let session = context::open(g).await?;
            let instance = session
                .bundle
                .resources
                .iter()
                .find(|(addr, _)| {
                    addr.kind == crate::resources::Kind::DatabaseInstances && addr.key == key
                })
                .and_then(|(_, r)| {
                    r.value
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| key.to_string());
            return Ok(Target {
                client: session.client.clone(),
                instance,
                user: session.user.user_name.clone(),
                session: Some(session),
                local: None,
            });
        }
        let (client, local) = bare_client(g).await?;
        let me = client
            .call(Method::GET, "/api/2.0/preview/scim/v2/Me", &[], None)
            .await;
        let user = match me
            .as_ref()
            .ok()
            .and_then(|m| m.get("userName"))
            .and_then(Value::as_str)
        {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => {
                match me {
                    Err(e) => output::error(format!("cannot identify the current user: {e}")),
                    Ok(_) => output::error("scim/v2/Me returned no userName"),
                }
                if let Some(emu) = local {
                    emu.detach().await;
                }
                return Err(Exit::Error);
            }
        };
        Ok(Target {
            client,
            instance: key.to_string(),
            user,
            session: None,
            local,
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

    /// Check the instance is AVAILABLE and mint a credential for it.
    pub async fn login(&self, database: &str) -> Result<DbLogin, Exit> {
        let path = format!("/api/2.0/database/instances/{}", encode(&self.instance));
        let inst = self
            .client
            .call(Method::GET, &path, &[], None)
            .await
            .map_err(|e| {
                output::error(format!("database instance {:?}: {e}", self.instance));
                Exit::Error
            })?;
        let state = inst
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN");
        if state != "AVAILABLE" {
            output::error(format!(
                "database instance {:?} is {state}; it must be AVAILABLE to connect",
                self.instance
            ));
            return Err(Exit::Error);
        }
        let Some(dns) = inst
            .get("read_write_dns")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        else {
            output::error(format!(
                "database instance {:?} has no read_write_dns",
                self.instance
            ));
            return Err(Exit::Error);
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
            .map_err(|e| {
                output::error(format!("generating a database credential: {e}"));
                Exit::Error
            })?;
        let Some(token) = cred.get("token").and_then(Value::as_str) else {
            output::error("the credential response has no token");
            return Err(Exit::Error);
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

pub(super) fn block_on<F: std::future::Future<Output = Exit>>(f: F) -> Exit {
    match context::runtime() {
        Ok(rt) => rt.block_on(f),
        Err(exit) => exit,
    }
}

pub fn run(g: &GlobalArgs, a: &CredentialArgs) -> Exit {
    block_on(async {
        let target = match Target::resolve(g, &a.key).await {
            Ok(t) => t,
            Err(exit) => return exit,
        };
        let login = target.login(&a.database).await;
        target.close().await;
        let login = match login {
            Ok(l) => l,
            Err(exit) => return exit,
        };
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
            }));
        } else {
            println!("instance:   {}", login.instance);
            println!("host:       {}", login.host);
            println!("port:       {}", login.port);
            println!("user:       {}", login.user);
            println!("database:   {}", login.database);
            println!("expires:    {}", login.expiration_time);
            println!("token:      {}", login.token);
            println!("connect:    psql \"{}\"", login.uri());
        }
        Exit::Success
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
