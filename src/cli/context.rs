//! Shared setup of the workspace commands (plan, deploy, destroy, summary,
//! run): resolve the workspace and a client (`--local` starts the in-process
//! local workspace), fetch the current user, load the bundle with it so
//! development-mode prefixes and `${workspace.current_user...}` resolve,
//! resolve `lookup` variables through the API, rewrite local paths, open the
//! state store. When the environment names the workspace the user is fetched
//! first and the bundle loads once; otherwise it loads once to find its
//! workspace and again with the user.
//!
//! Failures come back as a [`CliError`] (rendered once by `cli::run`).

use std::collections::HashMap;

use serde_json::Value;

use super::args::GlobalArgs;
use super::error::{CliError, ErrorClass};
use super::output;
use super::Exit;
use crate::api::{AuthOptions, Client, ClientConfig, Method, Secret};
use crate::config::model::{Bundle, CurrentUser};
use crate::config::source::SourceMap;
use crate::config::{load, LoadOptions};
use crate::diag::{Diagnostics, Severity};
use crate::plan::build::PlanReads;
use crate::plan::EngineError;
use crate::scripts::Hook;
use crate::state::hint::{self, StatePathHint};
use crate::state::{StateError, StateStore};
use lakebundle_emulator::{EmulatorConfig, RunningEmulator};

/// A loaded bundle bound to a workspace.
pub struct Session {
    pub bundle: Bundle,
    pub client: Client,
    pub user: CurrentUser,
    /// The in-process local workspace (`--local`), kept alive for the command.
    local: Option<RunningEmulator>,
    /// Workspace auth for scripts (a token only in their environment).
    script_env: Vec<(String, String)>,
    /// The state opened (and its resources' reads sent) while the bundle
    /// loaded: `plan` only, a command that locks reads the state after
    /// taking the lock.
    early_state: std::sync::Mutex<Option<EarlyState>>,
    /// The reads the early state sent, for the plan.
    early_reads: std::sync::Mutex<Option<PlanReads>>,
    /// `-t` as given (the key of the state path hints).
    target_arg: Option<String>,
    /// The command opened the state (its place is remembered at the end).
    state_opened: std::sync::atomic::AtomicBool,
}

impl Session {
    /// Stop the local workspace, if one was started.
    pub async fn close(self) {
        // Where this command found the state, for the next `plan` (at the
        // end: a first deploy makes `.lakebundle/` only as it goes).
        if self.local.is_none() && self.state_opened.into_inner() {
            hint::record_hint(
                &self.bundle.root,
                self.target_arg.as_deref(),
                StatePathHint {
                    target: self.bundle.target.clone(),
                    state_path: self.bundle.workspace.state_path.clone(),
                },
            );
        }
        if let Some(emu) = self.local {
            emu.detach().await;
        }
        // The process ends right after the command: freeing the whole
        // bundle (every resource's tree) would only cost time.
        std::mem::forget(self.bundle);
    }

    /// Open the state store (local cache + workspace copy, reconciled).
    pub async fn state(&self) -> Result<StateStore, CliError> {
        let early = take(&self.early_state);
        let store = match early.filter(|e| e.serves(&self.bundle)) {
            Some(early) => {
                let (store, reads) = early.finish().await.map_err(CliError::state)?;
                *self.early_reads.lock().unwrap_or_else(|e| e.into_inner()) = reads;
                store
            }
            None => StateStore::for_bundle(&self.bundle, Some(&self.client))
                .await
                .map_err(CliError::state)?,
        };
        tracing::debug!(target: "lakebundle::phase", "state opened");
        self.state_opened
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(store)
    }

    /// The reads of the state's resources sent while the bundle loaded
    /// (after [`Session::state`]; `plan` only).
    pub fn take_early_reads(&self) -> Option<PlanReads> {
        take(&self.early_reads)
    }

    /// An engine error over this session's bundle.
    pub fn engine_error(&self, e: EngineError) -> CliError {
        CliError::engine(&self.bundle, e)
    }

    /// Run these `experimental.scripts` hooks, in order, with the workspace
    /// in their environment.
    pub fn hooks(&self, hooks: &[Hook]) -> Result<(), CliError> {
        for h in hooks {
            // A script may call the local workspace served by this runtime:
            // block this worker only, not the runtime.
            tokio::task::block_in_place(|| run_hook(&self.bundle, *h, &self.script_env))?;
        }
        Ok(())
    }

    /// Run custom script `name` (top-level `scripts`); exit with its code.
    pub fn run_script(&self, name: &str) -> Result<Exit, CliError> {
        let code = tokio::task::block_in_place(|| {
            crate::scripts::run_custom(&self.bundle, name, &self.script_env)
        })
        .map_err(script_error)?;
        Ok(if code == 0 {
            Exit::Success
        } else {
            Exit::Status(code)
        })
    }
}

fn script_error(e: crate::scripts::ScriptError) -> CliError {
    CliError::diagnostic(ErrorClass::User, e)
}

/// Run one hook; without a workspace (`validate`), `env` is empty.
pub fn run_hook(bundle: &Bundle, hook: Hook, env: &[(String, String)]) -> Result<(), CliError> {
    crate::scripts::run_hook(bundle, hook, env).map_err(script_error)
}

/// What scripts get of the workspace: its host, and the auth that reaches it
/// (the local workspace's token, or the profile in use); other auth comes
/// from the inherited `DATABRICKS_*` environment.
fn script_env(
    g: &GlobalArgs,
    bundle: &Bundle,
    client: &Client,
    local: Option<&RunningEmulator>,
) -> Vec<(String, String)> {
    let mut env = vec![("DATABRICKS_HOST".to_string(), client.host().to_string())];
    match local {
        Some(emu) => env.push(("DATABRICKS_TOKEN".into(), emu.token().to_string())),
        None => {
            if let Some(p) = g
                .profile
                .clone()
                .or_else(|| bundle.workspace.profile.clone())
            {
                env.push(("DATABRICKS_CONFIG_PROFILE".into(), p));
            }
        }
    }
    env
}

/// Runs one command's `body` against an open session on its own runtime,
/// closing the session (and any local workspace) afterwards.
pub fn with_session(
    g: &GlobalArgs,
    body: impl AsyncFnOnce(&Session) -> Result<Exit, CliError>,
) -> Result<Exit, CliError> {
    with_session_opts(g, None, body)
}

/// [`with_session`] for a command that reads the state without the lock
/// (`plan`): the workspace state is fetched from where the last command
/// found it while the bundle loads.
pub fn with_session_prefetching_state(
    g: &GlobalArgs,
    reads: Option<usize>,
    body: impl AsyncFnOnce(&Session) -> Result<Exit, CliError>,
) -> Result<Exit, CliError> {
    with_session_opts(g, Some(StateAhead { reads }), body)
}

fn with_session_opts(
    g: &GlobalArgs,
    prefetch_state: Option<StateAhead>,
    body: impl AsyncFnOnce(&Session) -> Result<Exit, CliError>,
) -> Result<Exit, CliError> {
    let rt = runtime()?;
    let result = rt.block_on(async {
        let session = open_with(g, prefetch_state).await?;
        tracing::debug!(target: "lakebundle::phase", "bundle loaded");
        let result = body(&session).await;
        tracing::debug!(target: "lakebundle::phase", "command done");
        session.close().await;
        result
    });
    // Nothing is left to wait for (every operation was awaited): do not join
    // the runtime's idle threads on the way out.
    rt.shutdown_background();
    tracing::debug!(target: "lakebundle::phase", "runtime closed");
    result
}

/// A multi-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))
}

/// Print warnings (no errors among them) on stderr.
pub fn print_warnings(sources: &SourceMap, diags: &Diagnostics) {
    if diags.items.is_empty() {
        return;
    }
    eprint!(
        "{}",
        crate::diag::render_with(
            sources,
            diags,
            crate::diag::RenderOptions {
                color: output::color_stderr(),
                ..crate::diag::RenderOptions::default()
            }
        )
    );
}

/// Warnings are printed; errors (with the warnings) become the command's error.
fn check_diags(sources: &SourceMap, diags: Diagnostics) -> Result<(), CliError> {
    if diags.has_errors() {
        Err(CliError::diags(sources, diags))
    } else {
        print_warnings(sources, &diags);
        Ok(())
    }
}

fn env_snapshot() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// One command loads its bundle more than once (offline, then with the
/// current user and lookups); the files are parsed once.
static PARSE_CACHE: std::sync::LazyLock<std::sync::Arc<crate::config::ParseCache>> =
    std::sync::LazyLock::new(Default::default);

fn load_options(
    g: &GlobalArgs,
    user: Option<CurrentUser>,
    lookups: HashMap<String, Value>,
) -> LoadOptions {
    LoadOptions {
        dir: g.dir.clone(),
        target: g.target.clone(),
        vars: g.vars.clone(),
        current_user: user,
        lookups,
        env: env_snapshot(),
        parse_cache: Some(PARSE_CACHE.clone()),
        ..LoadOptions::default()
    }
}

/// The bundle without a workspace (no current user, no lookups), warnings
/// left for the session's load: what `deploy` builds artifacts from.
pub(crate) fn load_quiet(g: &GlobalArgs) -> Result<Bundle, CliError> {
    load_bundle(&load_options(g, None, HashMap::new()), false)
}

/// Load once; the bundle, or its diagnostics as the error. Warnings are
/// printed when `print_warnings` (the first of two loads stays quiet).
fn load_bundle(opts: &LoadOptions, print_warnings: bool) -> Result<Bundle, CliError> {
    let (bundle, shown) = load_checked(opts)?;
    if print_warnings {
        self::print_warnings(&bundle.sources, &shown);
    }
    Ok(bundle)
}

/// Load once; the bundle and its warnings, or its diagnostics as the error.
fn load_checked(opts: &LoadOptions) -> Result<(Bundle, Diagnostics), CliError> {
    let loaded = load(opts);
    // Info notes (values pending a workspace) are for `validate`; the
    // workspace commands resolve them.
    let shown = Diagnostics {
        items: loaded
            .diags
            .items
            .iter()
            .filter(|d| d.severity != Severity::Info)
            .cloned()
            .collect(),
    };
    if loaded.diags.has_errors() {
        return Err(CliError::diags(&loaded.sources, shown));
    }
    match loaded.bundle {
        Some(b) => Ok((b, shown)),
        None => Err(CliError::diags(&loaded.sources, shown)),
    }
}

/// Load without a workspace (commands that need none, like `graph`).
pub fn load_offline(g: &GlobalArgs) -> Result<Bundle, CliError> {
    load_bundle(&load_options(g, None, HashMap::new()), true)
}

/// The short name the CLI derives from a user name: the part before `@`,
/// anything but letters and digits replaced by `_`, lower-cased.
pub fn short_name(user_name: &str) -> String {
    let local = user_name.split('@').next().unwrap_or(user_name);
    local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The workspace's current user (`scim/v2/Me`).
pub async fn current_user(client: &Client) -> Result<CurrentUser, CliError> {
    let me = client
        .call(Method::GET, "/api/2.0/preview/scim/v2/Me", &[], None)
        .await
        .map_err(|e| {
            CliError::api(
                format_args!("cannot identify the current user at {}", client.host()),
                &e,
            )
        })?;
    let Some(user_name) = me
        .get("userName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Err(CliError::remote(format!(
            "{} answered scim/v2/Me without a userName",
            client.host()
        )));
    };
    Ok(CurrentUser {
        user_name: user_name.to_string(),
        short_name: short_name(user_name),
        attributes: me
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "userName" | "short_name"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Start the in-process local workspace over `$LAKEBUNDLE_HOME/local-workspace`,
/// reading source tables from the bundle's lake dir (`crate::init::lake`) when
/// there is a bundle.
pub async fn start_local(
    bundle_root: Option<&std::path::Path>,
) -> Result<(RunningEmulator, Client), CliError> {
    let data_dir = lakebundle_emulator::default_data_dir()
        .map_err(|e| CliError::context(ErrorClass::User, "--local", &e))?;
    let lake_dir = match bundle_root {
        Some(root) => crate::init::local_lake_dir(root)
            .map_err(|e| CliError::user(format!("--local: {e}")))?,
        None => None,
    };
    let emu = lakebundle_emulator::start(EmulatorConfig {
        lake_dir,
        ..EmulatorConfig::local(data_dir)
    })
    .await
    .map_err(|e| {
        CliError::context(
            ErrorClass::User,
            "--local: cannot start the local workspace",
            &e,
        )
    })?;
    let client = Client::with_token(emu.url(), Secret::new(emu.token()), ClientConfig::default())
        .map_err(|e| CliError::diagnostic(ErrorClass::Internal, e))?;
    Ok((emu, client))
}

fn remote_client(g: &GlobalArgs, bundle: Option<&Bundle>) -> Result<Client, CliError> {
    let opts = AuthOptions {
        profile: g.profile.clone(),
        bundle_host: bundle.and_then(|b| b.workspace.host.clone()),
        bundle_profile: bundle.and_then(|b| b.workspace.profile.clone()),
        ..AuthOptions::from_process_env()
    };
    Client::from_options(&opts, ClientConfig::default())
        .map_err(|e| CliError::diagnostic(ErrorClass::User, e))
}

/// A workspace client without a bundle: `--local` or the usual auth chain.
pub async fn bare_client(g: &GlobalArgs) -> Result<(Client, Option<RunningEmulator>), CliError> {
    if g.local {
        let (emu, client) = start_local(None).await?;
        return Ok((client, Some(emu)));
    }
    Ok((remote_client(g, None)?, None))
}

/// Load, connect, identify, resolve lookups, rewrite paths.
pub async fn open(g: &GlobalArgs) -> Result<Session, CliError> {
    open_with(g, None).await
}

/// `prefetch_state`: open the state from where the last command found it
/// while the bundle loads.
async fn open_with(
    g: &GlobalArgs,
    prefetch_state: Option<StateAhead>,
) -> Result<Session, CliError> {
    let (prefetched, loaded) = if g.local {
        (None, None)
    } else {
        match open_user_first(g, prefetch_state).await? {
            UserFirst::Opened(session) => return Ok(*session),
            UserFirst::Fallback(prefetched, loaded) => (prefetched, loaded),
        }
    };
    // What the first load gives (root, hooks, workspace, lookups) does not
    // depend on the user: a load made with one serves.
    let first = match loaded {
        Some(b) => *b,
        None => load_bundle(&load_options(g, None, HashMap::new()), false)?,
    };
    tokio::task::block_in_place(|| run_hook(&first, Hook::PreInit, &[]))?;
    let (local, client) = if g.local {
        let (emu, client) = start_local(Some(&first.root)).await?;
        (Some(emu), client)
    } else {
        (None, remote_client(g, Some(&first))?)
    };
    let env = script_env(g, &first, &client, local.as_ref());
    // The user asked for before the load still holds for the same host.
    let user = match prefetched {
        Some((host, user)) if host == client.host() => Some(user),
        _ => None,
    };
    let result = match finish_open(g, first, &client, user).await {
        Ok((bundle, user)) => tokio::task::block_in_place(|| {
            run_hook(&bundle, Hook::PostInit, &env).map(|()| (bundle, user))
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok((bundle, user)) => Ok(Session {
            bundle,
            client,
            user,
            local,
            script_env: env,
            early_state: Default::default(),
            early_reads: Default::default(),
            target_arg: g.target.clone(),
            state_opened: Default::default(),
        }),
        Err(e) => {
            if let Some(emu) = local {
                emu.detach().await;
            }
            Err(e)
        }
    }
}

/// What `plan` opens ahead, while the bundle loads: the state, and with a
/// parallelism the reads of its resources (none for `--refresh=false`).
#[derive(Debug, Clone, Copy)]
struct StateAhead {
    reads: Option<usize>,
}

fn take<T>(slot: &std::sync::Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// A target's state opened from where the last command found it
/// (`.lakebundle/state-paths.json`), and its resources' reads sent, while
/// the bundle loads. Used only if the loaded bundle has that target and
/// state path; else dropped, and the state opened again.
struct EarlyState {
    root: std::path::PathBuf,
    hint: StatePathHint,
    task: tokio::task::JoinHandle<EarlyOpened>,
    /// Dropped unused (the bundle did not load, or loads again), it stops.
    _stop: AbortOnDrop,
}

type EarlyOpened = Result<(StateStore, Option<PlanReads>), StateError>;

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A finished task is left as it is.
        self.0.abort();
    }
}

impl EarlyState {
    fn start(
        root: std::path::PathBuf,
        hint: StatePathHint,
        client: Client,
        reads: Option<usize>,
    ) -> EarlyState {
        let (target, state_path) = (hint.target.clone(), hint.state_path.clone());
        let at = root.clone();
        let task = tokio::spawn(async move {
            let store = StateStore::for_target(&at, &target, &state_path, Some(&client)).await?;
            let reads = reads.map(|p| store.read(|st| PlanReads::start(st, &client, p)));
            Ok((store, reads))
        });
        EarlyState {
            root,
            hint,
            _stop: AbortOnDrop(task.abort_handle()),
            task,
        }
    }

    fn serves(&self, bundle: &Bundle) -> bool {
        let trim = |p: &str| p.trim_end_matches('/').to_string();
        self.root == bundle.root
            && self.hint.target == bundle.target
            && trim(&self.hint.state_path) == trim(&bundle.workspace.state_path)
    }

    async fn finish(self) -> EarlyOpened {
        match self.task.await {
            Ok(opened) => opened,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// A user fetched before the load, with the host it came from.
type PrefetchedUser = (String, Result<CurrentUser, CliError>);

enum UserFirst {
    Opened(Box<Session>),
    /// Load again after all, handing on the user if one was asked for and
    /// the bundle if it loaded.
    Fallback(Option<PrefetchedUser>, Option<Box<Bundle>>),
}

/// The one-load path: when the environment names the workspace, ask for the
/// current user first and load the bundle once, with it. Loading twice
/// (without the user, then with it) costs a whole load, as much as the rest
/// of a `plan --refresh=false`. The load stands only if nothing could have
/// changed it: the bundle names no other workspace (`workspace.host`,
/// `workspace.profile`), has no `lookup` variables (resolved through the API
/// and loaded again) and no `preinit` script (which may write the files the
/// load reads). Otherwise the two-load path takes over, quietly.
async fn open_user_first(
    g: &GlobalArgs,
    prefetch_state: Option<StateAhead>,
) -> Result<UserFirst, CliError> {
    let Ok(spec_client) = remote_client(g, None) else {
        return Ok(UserFirst::Fallback(None, None));
    };
    let host = spec_client.host().to_string();
    // The bundle's files are parsed while the current user is fetched: the
    // load needs the user only to resolve references.
    let warm_opts = load_options(g, None, HashMap::new());
    // And the state is opened from where the last command found it.
    let early_state = prefetch_state.and_then(|StateAhead { reads }| {
        let root = crate::config::load::bundle_root(&warm_opts)?;
        let hint = hint::read_hint(&root, g.target.as_deref())?;
        Some(EarlyState::start(root, hint, spec_client.clone(), reads))
    });
    let warm = tokio::task::spawn_blocking(move || {
        crate::config::load::warm_parse_cache(&warm_opts);
    });
    let (user, _) = tokio::join!(current_user(&spec_client), warm);
    let user = match user {
        Ok(user) => user,
        // Reported after the bundle loads (its own errors come first).
        Err(e) => return Ok(UserFirst::Fallback(Some((host, Err(e))), None)),
    };
    let prefetched = Some((host.clone(), Ok(user.clone())));
    // The last load in the usual case: it takes the parsed files out of the
    // cache (the fallback parses again).
    let opts = LoadOptions {
        take_from_cache: true,
        ..load_options(g, Some(user.clone()), HashMap::new())
    };
    let Ok((bundle, shown)) = load_checked(&opts) else {
        // The two-load path reports the bundle's errors.
        return Ok(UserFirst::Fallback(prefetched, None));
    };
    let stands = bundle.workspace.profile.is_none()
        && bundle.pending_lookups.is_empty()
        && !bundle.scripts.hooks.contains_key(&Hook::PreInit);
    let client = match remote_client(g, Some(&bundle)) {
        Ok(c) if stands && c.host() == host => c,
        _ => return Ok(UserFirst::Fallback(prefetched, Some(Box::new(bundle)))),
    };
    print_warnings(&bundle.sources, &shown);
    let bundle = finish_bundle(bundle)?;
    let env = script_env(g, &bundle, &client, None);
    tokio::task::block_in_place(|| run_hook(&bundle, Hook::PostInit, &env))?;
    Ok(UserFirst::Opened(Box::new(Session {
        bundle,
        client,
        user,
        local: None,
        script_env: env,
        early_state: std::sync::Mutex::new(early_state),
        early_reads: Default::default(),
        target_arg: g.target.clone(),
        state_opened: Default::default(),
    })))
}

async fn finish_open(
    g: &GlobalArgs,
    first: Bundle,
    client: &Client,
    user: Option<Result<CurrentUser, CliError>>,
) -> Result<(Bundle, CurrentUser), CliError> {
    let user = match user {
        Some(user) => user?,
        None => current_user(client).await?,
    };
    let lookups = crate::lookup::resolve_lookups(client, &first.pending_lookups)
        .await
        .map_err(|diags| CliError::diags(&first.sources, diags))?;
    let bundle = load_bundle(&load_options(g, Some(user.clone()), lookups), true)?;
    Ok((finish_bundle(bundle)?, user))
}

/// Artifact outputs, then local paths rewritten to their workspace copies.
fn finish_bundle(mut bundle: Bundle) -> Result<Bundle, CliError> {
    // Artifact outputs first: they become workspace paths the rewrite skips.
    let diags = crate::artifacts::check_and_point(&mut bundle);
    check_diags(&bundle.sources, diags)?;
    let diags = crate::apply::files::rewrite_paths(&mut bundle);
    check_diags(&bundle.sources, diags)?;
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_follow_the_cli() {
        assert_eq!(short_name("Jane.Doe@example.com"), "jane_doe");
        assert_eq!(short_name("local-user@example.com"), "local_user");
        assert_eq!(short_name("2f1c-uuid"), "2f1c_uuid");
    }
}
