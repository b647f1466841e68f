//! HA nodes: `node_count - 1` streaming replicas of the primary, each its
//! own server on its own loopback address. With
//! `enable_readable_secondaries` they run `hot_standby = on` and the first
//! one is the instance's `read_only_dns`; otherwise they only stream.

use std::path::PathBuf;

use super::error::{PgError, PgResult};
use super::server::{self, ServerConf, ServerDirs, Standby};
use super::{Fleet, InstanceMeta, ReplicaMeta};

impl Fleet {
    pub(super) fn replica_dirs(&self, uid: &str, name: &str) -> ServerDirs {
        let dir = self.instance_dir(uid).join(name);
        ServerDirs::new(dir.join("data"), dir.join("server.log"))
    }

    pub(super) fn replica_conf(&self, meta: &InstanceMeta, r: &ReplicaMeta) -> ServerConf {
        ServerConf {
            addr: r.addr,
            capacity: meta.capacity.clone(),
            archive: None,
            hot_standby: meta.readable,
            ssl: self.ssl,
            // A replica that was stopped a while (an idle read-only endpoint) catches up
            // from the primary's archive when the primary no longer keeps the WAL.
            recovery: Some(server::Recovery {
                archive: self.instance_dir(&meta.uid).join("wal_archive"),
                target: server::RecoveryTarget::Latest,
            }),
            standby_of: Some(Standby {
                primary: meta.addr,
                passfile: self.passfile(&meta.uid, &r.name),
                name: r.name.clone(),
            }),
            preload: self.preload.clone(),
            extra: self.replica_settings(meta, r).conf,
        }
    }

    /// A replica's own settings: it serves the read-only endpoint of its position.
    fn replica_settings(
        &self,
        meta: &InstanceMeta,
        r: &ReplicaMeta,
    ) -> crate::backend::ServerSettings {
        let i = meta
            .replicas
            .iter()
            .position(|o| o.name == r.name)
            .unwrap_or(meta.replicas.len());
        meta.server(i + 1)
    }

    fn passfile(&self, uid: &str, name: &str) -> PathBuf {
        self.instance_dir(uid).join(name).join("pgpass")
    }

    /// (Re)write a replica's config and start it on a free address.
    pub(super) async fn start_replica(
        &self,
        meta: &InstanceMeta,
        r: &mut ReplicaMeta,
    ) -> PgResult<()> {
        let dirs = self.replica_dirs(&meta.uid, &r.name);
        if server::is_running(&self.bin, &self.run_as, &dirs.data).await {
            return Ok(());
        }
        let mut avoid = vec![meta.addr];
        avoid.extend(
            meta.replicas
                .iter()
                .filter(|o| o.name != r.name)
                .map(|o| o.addr),
        );
        let mut addr = server::reuse_or_allocate(r.addr, &avoid);
        let mut attempts = 0;
        loop {
            r.addr = addr;
            server::write_conf(
                &self.run_as,
                &dirs.data,
                &self.replica_conf(meta, r),
                meta.native_login,
            )?;
            match server::start(&self.bin, &self.run_as, &dirs).await {
                Ok(()) => break,
                Err(e) if server::is_bind_failure(&e) && attempts < 5 => {
                    attempts += 1;
                    server::release_addr(addr);
                    avoid.push(addr);
                    addr = server::allocate_addr(&avoid);
                }
                Err(e) => return Err(e),
            }
        }
        if meta.readable {
            server::wait_ready(
                r.addr,
                &self.admin_password,
                false,
                std::time::Duration::from_secs(60),
                &dirs.log,
            )
            .await?;
        }
        Ok(())
    }

    async fn add_replica(&self, meta: &mut InstanceMeta, index: usize) -> PgResult<()> {
        let name = format!("replica-{index}");
        let dirs = self.replica_dirs(&meta.uid, &name);
        let home = self.instance_dir(&meta.uid).join(&name);
        if home.exists() {
            std::fs::remove_dir_all(&home).map_err(PgError::io(&home))?;
        }
        std::fs::create_dir_all(&home).map_err(PgError::io(&home))?;
        let passfile = self.passfile(&meta.uid, &name);
        server::write_private(
            &passfile,
            &format!("*:*:*:{}:{}\n", server::ADMIN_ROLE, self.admin_password),
        )?;
        self.run_as.chown_tree(&home)?;
        self.basebackup(meta.addr, &dirs.data).await?;
        let signal = dirs.data.join("standby.signal");
        std::fs::write(&signal, "").map_err(PgError::io(&signal))?;
        self.run_as.chown_tree(&home)?;
        let mut avoid = vec![meta.addr];
        avoid.extend(meta.replicas.iter().map(|o| o.addr));
        let mut r = ReplicaMeta {
            name,
            addr: server::allocate_addr(&avoid),
        };
        let started = self.start_replica(meta, &mut r).await;
        meta.replicas.push(r);
        started
    }

    async fn remove_replica(&self, meta: &mut InstanceMeta) -> PgResult<()> {
        let Some(r) = meta.replicas.pop() else {
            return Ok(());
        };
        let dirs = self.replica_dirs(&meta.uid, &r.name);
        server::stop(&self.bin, &self.run_as, &dirs.data).await?;
        server::release_addr(r.addr);
        let home = self.instance_dir(&meta.uid).join(&r.name);
        std::fs::remove_dir_all(&home).map_err(PgError::io(&home))
    }

    /// Bring the replicas in line with `node_count` / readability; the
    /// primary is running. `readable_changed` restarts existing ones.
    pub(super) async fn reconcile_replicas(
        &self,
        meta: &mut InstanceMeta,
        readable_changed: bool,
    ) -> PgResult<()> {
        let want = meta.node_count.saturating_sub(1) as usize;
        while meta.replicas.len() > want {
            self.remove_replica(meta).await?;
        }
        let snapshot = meta.clone();
        for (i, r) in meta.replicas.iter_mut().enumerate() {
            let dirs = self.replica_dirs(&snapshot.uid, &r.name);
            if readable_changed || snapshot.server(i + 1).suspended {
                server::stop(&self.bin, &self.run_as, &dirs.data).await?;
            }
            if !snapshot.server(i + 1).suspended {
                self.start_replica(&snapshot, r).await?;
            }
        }
        while meta.replicas.len() < want {
            let index = meta.replicas.len() + 1;
            self.add_replica(meta, index).await?;
            if meta.server(index).suspended {
                let dirs = self.replica_dirs(&meta.uid, &format!("replica-{index}"));
                server::stop(&self.bin, &self.run_as, &dirs.data).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn stop_replicas(&self, meta: &InstanceMeta) -> PgResult<()> {
        for r in &meta.replicas {
            server::stop(
                &self.bin,
                &self.run_as,
                &self.replica_dirs(&meta.uid, &r.name).data,
            )
            .await?;
            server::release_addr(r.addr);
        }
        Ok(())
    }
}
