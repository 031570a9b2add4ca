//! The classic builder: each instruction of each needed stage makes an image, RUN in a
//! container of the image before it, COPY/ADD as a layer made straight from the
//! sources (no container), config instructions as an image with no new layer. A step
//! whose parent, instruction text and (for COPY/ADD) source content are the same as an
//! earlier step's is taken from the cache.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use berth_runtime::files::CommitOptions;
use berth_runtime::Runtime;
use berth_store::digest::chain_ids;
use berth_store::image::History;
use berth_store::{Digest, ImageConfig, Reference};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::cache::BuildCache;
use crate::dockerfile::{self, Command, CopySpec, Instruction, Kind, Stage};
use crate::expand::{expand, expand_words};
use crate::ignore::Ignore;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Parse(#[from] dockerfile::ParseError),
    /// A step failed; the message is Docker's.
    #[error("{0}")]
    Step(String),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
}

impl BuildError {
    pub fn kind(&self) -> berth_store::ErrorKind {
        match self {
            BuildError::Parse(_) | BuildError::Step(_) => berth_store::ErrorKind::InvalidArgument,
            BuildError::Runtime(e) => e.kind(),
            BuildError::Store(e) => e.kind(),
        }
    }
}

type Result<T, E = BuildError> = std::result::Result<T, E>;

fn step_error(message: impl Into<String>) -> BuildError {
    BuildError::Step(message.into())
}

/// What `POST /build` asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The unpacked context.
    pub context: PathBuf,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub network_mode: String,
    pub force_rm: bool,
}

/// A line of output (`{"stream": …}`) or the built image (`{"aux": {"ID": …}}`).
pub enum Output {
    Stream(String),
    Image(String),
}

pub type OutputSink = Arc<dyn Fn(Output) + Send + Sync>;

/// Step results by (parent image, step text): the classic builder's cache.
pub struct Builder {
    runtime: Arc<Runtime>,
    cache: BuildCache,
}

/// Where a stage is while it builds.
struct StageState {
    image: Option<Digest>,
    config: ImageConfig,
    /// ARGs declared in this stage, with their values.
    args: BTreeMap<String, String>,
    shell: Vec<String>,
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

impl Builder {
    pub fn new(runtime: Arc<Runtime>, data_root: &Path) -> Self {
        Builder {
            runtime,
            cache: BuildCache::open(data_root.join("builder").join("cache.json")),
        }
    }

    fn cached(&self, key: &str) -> Option<Digest> {
        self.cache.lookup(key, self.runtime.images())
    }

    fn remember(&self, key: String, id: &Digest) {
        self.cache.remember(key, id);
    }

    /// The step cache, for disk usage and `builder prune`.
    pub fn cache(&self) -> &BuildCache {
        &self.cache
    }

    /// Builds and tags; returns the image id.
    pub async fn build(&self, options: BuildOptions, out: OutputSink) -> Result<Digest> {
        let result = self.build_stages(options, out).await;
        // Cache hits are counted in memory during the build and written once here.
        self.cache.persist();
        result
    }

    async fn build_stages(&self, options: BuildOptions, out: OutputSink) -> Result<Digest> {
        let say = |text: String| out(Output::Stream(text));
        let path = safe_join(&options.context, &options.dockerfile).ok_or_else(|| {
            step_error(format!(
                "Cannot locate specified Dockerfile: {}",
                options.dockerfile
            ))
        })?;
        let text = std::fs::read_to_string(&path).map_err(|_| {
            step_error(format!(
                "Cannot locate specified Dockerfile: {}",
                options.dockerfile
            ))
        })?;
        let parsed = dockerfile::parse(&text)?;
        let ignore = match std::fs::read_to_string(options.context.join(".dockerignore")) {
            Ok(text) => {
                Ignore::parse(&text).map_err(|e| step_error(format!(".dockerignore: {e}")))?
            }
            Err(_) => Ignore::default(),
        };
        let escape = parsed.escape;

        // Meta args: before the first FROM, for FROM lines only.
        let mut meta: BTreeMap<String, String> = BTreeMap::new();
        for instruction in &parsed.meta_args {
            if let Kind::Arg(args) = &instruction.kind {
                for (name, default) in args {
                    let value = options
                        .build_args
                        .get(name)
                        .cloned()
                        .or_else(|| default.clone());
                    if let Some(v) = value {
                        meta.insert(name.clone(), v);
                    }
                }
            }
        }

        // Only the stages the target needs (through FROM and COPY --from), in order.
        let target_index = match &options.target {
            Some(t) => parsed
                .stages
                .iter()
                .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
                .ok_or_else(|| {
                    step_error(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => parsed.stages.len().saturating_sub(1),
        };
        let needed = needed_stages(&parsed.stages, target_index);
        let total: usize = needed
            .iter()
            .map(|&i| parsed.stages[i].instructions.len() + 1)
            .sum();

        let mut step = 0;
        let mut built: Vec<Option<Digest>> = vec![None; parsed.stages.len()];
        let mut last = None;
        for &index in &needed {
            let stage = &parsed.stages[index];
            step += 1;
            say(format!("Step {step}/{total} : {}\n", stage.original));
            let meta_lookup = |name: &str| meta.get(name).cloned();
            let base = expand(&stage.base, &meta_lookup, escape)
                .map_err(|e| step_error(format!("{e}")))?;
            let mut state = self
                .start_stage(&base, &parsed.stages[..index], &built)
                .await?;
            if let Some(id) = &state.image {
                say(format!(" ---> {}\n", short(id.as_str())));
            }
            // The base image's ONBUILD triggers run first, unnumbered, and are not
            // inherited.
            let triggers = state.config.config.on_build.take().unwrap_or_default();
            let mut trigger_steps = Vec::new();
            for trigger in &triggers {
                trigger_steps.extend(dockerfile::parse_instructions(trigger)?);
            }
            if !triggers.is_empty() {
                say(format!("# Executing {} build trigger", triggers.len())
                    + if triggers.len() == 1 { "\n" } else { "s\n" });
            }
            let steps = trigger_steps
                .iter()
                .map(|i| (i, false))
                .chain(stage.instructions.iter().map(|i| (i, true)));
            for (instruction, numbered) in steps {
                if numbered {
                    step += 1;
                    say(format!("Step {step}/{total} : {}\n", instruction.original));
                }
                self.run_step(
                    &mut state,
                    instruction,
                    &options,
                    &meta,
                    &ignore,
                    &parsed.stages,
                    &built,
                    escape,
                    &say,
                )
                .await?;
            }
            if index == target_index && !options.labels.is_empty() {
                let mut config = state.config.clone();
                let labels = config.config.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in &options.labels {
                    labels.insert(k.clone(), v.clone());
                }
                let id = self.commit_config(&state, config, "LABEL (build labels)".into())?;
                state.image = Some(id.clone());
                state.config = (*self.image(&id)?.config).clone();
            }
            built[index] = state.image.clone();
            last = state.image.clone();
        }
        let id = last.ok_or_else(|| step_error("the build produced no image"))?;
        out(Output::Image(id.to_string()));
        say(format!("Successfully built {}\n", short(id.as_str())));
        for tag in &options.tags {
            self.runtime.images().tag(&id, tag)?;
            say(format!("Successfully tagged {}\n", tag.familiar()));
        }
        Ok(id)
    }

    fn image(&self, id: &Digest) -> Result<berth_store::Image> {
        self.runtime
            .images()
            .get(id)
            .ok_or_else(|| BuildError::Store(berth_store::Error::ImageNotFound(id.to_string())))
    }

    async fn start_stage(
        &self,
        base: &str,
        earlier: &[Stage],
        built: &[Option<Digest>],
    ) -> Result<StageState> {
        let from_stage = earlier.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(base))
        });
        let image = if let Some(i) = from_stage {
            built[i].clone()
        } else if base == "scratch" {
            None
        } else {
            let view = self.runtime.images().resolve(base).map_err(|_| {
                step_error(format!(
                    "pull access denied for {base}, repository does not exist or may require 'docker login'"
                ))
            })?;
            Some(view.image.id)
        };
        let config = match &image {
            Some(id) => (*self.image(id)?.config).clone(),
            None => ImageConfig {
                architecture: berth_store::store::host_architecture().to_string(),
                os: "linux".into(),
                rootfs: berth_store::image::RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            },
        };
        let shell = config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        Ok(StageState {
            image,
            config,
            args: BTreeMap::new(),
            shell,
        })
    }

    fn env_of(state: &StageState) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        for (k, v) in &state.args {
            vars.insert(k.clone(), v.clone());
        }
        for e in state.config.config.env.iter().flatten() {
            if let Some((k, v)) = e.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        vars
    }

    /// An image that is `config` with a history line and no new layer.
    fn commit_config(
        &self,
        state: &StageState,
        mut config: ImageConfig,
        text: String,
    ) -> Result<Digest> {
        let now = berth_store::store::now_rfc3339();
        config.created = Some(now.clone());
        config.history.push(History {
            created: Some(now),
            created_by: Some(format!("/bin/sh -c #(nop)  {text}")),
            empty_layer: true,
            ..Default::default()
        });
        Ok(self
            .runtime
            .images()
            .create_image(config, Vec::new(), state.image.clone())?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        state: &mut StageState,
        instruction: &Instruction,
        options: &BuildOptions,
        meta: &BTreeMap<String, String>,
        ignore: &Ignore,
        stages: &[Stage],
        built: &[Option<Digest>],
        escape: char,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<()> {
        let vars = Self::env_of(state);
        let lookup = |name: &str| vars.get(name).cloned();
        let ex = |w: &str| expand(w, &lookup, escape).map_err(|e| step_error(format!("{e}")));
        let parent = state
            .image
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "scratch".into());
        let mut config = state.config.clone();
        // Config instructions: the new config and the history text.
        let change: Option<String> = match &instruction.kind {
            Kind::Env(pairs) => {
                let env = config.config.env.get_or_insert_with(Vec::new);
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let v = ex(v)?;
                    env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                    shown.push(format!("{k}={v}"));
                }
                Some(format!("ENV {}", shown.join(" ")))
            }
            Kind::Label(pairs) => {
                let labels = config.config.labels.get_or_insert_with(BTreeMap::new);
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (ex(k)?, ex(v)?);
                    shown.push(format!("{k}={v}"));
                    labels.insert(k, v);
                }
                Some(format!("LABEL {}", shown.join(" ")))
            }
            Kind::Maintainer(m) => {
                config.author = Some(m.clone());
                Some(format!("MAINTAINER {m}"))
            }
            Kind::Cmd(c) => {
                config.config.cmd = Some(command_argv(c, &state.shell));
                Some(format!("CMD {}", json!(config.config.cmd)))
            }
            Kind::Entrypoint(c) => {
                config.config.entrypoint = Some(command_argv(c, &state.shell));
                // Docker: a new ENTRYPOINT resets a CMD inherited from the base image.
                if state.config.config.entrypoint != config.config.entrypoint {
                    config.config.cmd = None;
                }
                Some(format!("ENTRYPOINT {}", json!(config.config.entrypoint)))
            }
            Kind::Shell(s) => {
                config.config.shell = Some(s.clone());
                Some(format!("SHELL {}", json!(s)))
            }
            Kind::Expose(ports) => {
                let exposed = config
                    .config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                let mut shown = Vec::new();
                let words: Vec<String> = ports
                    .iter()
                    .map(|p| {
                        expand_words(p, &lookup, escape).map_err(|e| step_error(format!("{e}")))
                    })
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect();
                for p in words {
                    let key = if p.contains('/') {
                        p.clone()
                    } else {
                        format!("{p}/tcp")
                    };
                    shown.push(key.clone());
                    exposed.insert(key, json!({}));
                }
                Some(format!("EXPOSE {}", shown.join(" ")))
            }
            Kind::Volume(paths) => {
                let volumes = config.config.volumes.get_or_insert_with(BTreeMap::new);
                let mut shown = Vec::new();
                for p in paths {
                    let p = ex(p)?;
                    shown.push(p.clone());
                    volumes.insert(p, json!({}));
                }
                Some(format!("VOLUME {}", json!(shown)))
            }
            Kind::User(u) => {
                config.config.user = ex(u)?;
                Some(format!("USER {}", config.config.user))
            }
            Kind::Stopsignal(s) => {
                config.config.stop_signal = Some(ex(s)?);
                Some(format!("STOPSIGNAL {s}"))
            }
            Kind::Healthcheck(h) => {
                config.config.healthcheck = Some(match h {
                    None => json!({"Test": ["NONE"]}),
                    Some(h) => {
                        let test = match &h.test {
                            Command::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        };
                        let mut v = json!({"Test": test});
                        for (key, value) in [
                            ("Interval", &h.interval),
                            ("Timeout", &h.timeout),
                            ("StartPeriod", &h.start_period),
                            ("StartInterval", &h.start_interval),
                        ] {
                            if let Some(d) = value {
                                v[key] =
                                    json!(dockerfile::go_duration_nanos(d).map_err(step_error)?);
                            }
                        }
                        if let Some(r) = h.retries {
                            v["Retries"] = json!(r);
                        }
                        v
                    }
                });
                Some(format!(
                    "HEALTHCHECK {}",
                    instruction.original.splitn(2, ' ').nth(1).unwrap_or("")
                ))
            }
            Kind::Onbuild(inner) => {
                config
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(inner.original.clone());
                Some(format!("ONBUILD {}", inner.original))
            }
            Kind::Arg(args) => {
                let mut shown = Vec::new();
                for (name, default) in args {
                    let value = options
                        .build_args
                        .get(name)
                        .cloned()
                        .or_else(|| match default {
                            Some(d) => ex(d).ok(),
                            None => meta.get(name).cloned(),
                        });
                    if let Some(v) = value {
                        state.args.insert(name.clone(), v);
                    }
                    shown.push(match default {
                        Some(d) => format!("{name}={d}"),
                        None => name.clone(),
                    });
                }
                Some(format!("ARG {}", shown.join(" ")))
            }
            Kind::Workdir(w) => {
                let w = ex(w)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    let base = if config.config.working_dir.is_empty() {
                        "/".to_string()
                    } else {
                        config.config.working_dir.clone()
                    };
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                config.config.working_dir = path.clone();
                Some(format!("WORKDIR {path}"))
            }
            Kind::Run { .. } | Kind::Copy(_) | Kind::Add(_) => None,
        };
        if let Some(text) = change {
            let key = cache_key(&parent, &text, &state.args);
            if let Some(id) = (!options.no_cache).then(|| self.cached(&key)).flatten() {
                say(" ---> Using cache\n".into());
                return self.adopt(state, id, say);
            }
            // WORKDIR makes its directory when the image lacks it, as Docker does.
            if let (Kind::Workdir(_), Some(image)) = (&instruction.kind, &state.image) {
                if !self.path_exists(image, &config.config.working_dir)? {
                    let dir = config.config.working_dir.clone();
                    let tar = directory_tar(&dir)?;
                    let id = self.commit_layer(
                        state,
                        config,
                        tar,
                        format!("/bin/sh -c #(nop)  {text}"),
                    )?;
                    self.remember(key, &id);
                    return self.adopt(state, id, say);
                }
            }
            let id = self.commit_config(state, config, text)?;
            self.remember(key, &id);
            return self.adopt(state, id, say);
        }
        match &instruction.kind {
            Kind::Run { command, heredocs } => {
                let mut argv = command_argv(command, &state.shell);
                if !heredocs.is_empty() {
                    // A heredoc is the script's stdin-free body: run it with the shell.
                    let body: String = heredocs.iter().map(|h| h.content.clone()).collect();
                    argv = state.shell.clone();
                    argv.push(body);
                }
                let text = argv.join(" ");
                let args_prefix = if state.args.is_empty() {
                    String::new()
                } else {
                    format!(
                        "|{} {} ",
                        state.args.len(),
                        state
                            .args
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                };
                let created_by = format!("{args_prefix}{text}");
                let key = cache_key(&parent, &created_by, &state.args);
                if let Some(id) = (!options.no_cache).then(|| self.cached(&key)).flatten() {
                    say(" ---> Using cache\n".into());
                    return self.adopt(state, id, say);
                }
                let id = self
                    .run_container(state, argv, &created_by, options, say)
                    .await?;
                self.remember(key, &id);
                self.adopt(state, id, say)
            }
            Kind::Copy(spec) | Kind::Add(spec) => {
                let is_add = matches!(instruction.kind, Kind::Add(_));
                let (tar, summary) = self
                    .copy_layer(state, spec, is_add, options, ignore, stages, built, &ex)
                    .await?;
                let verb = if is_add { "ADD" } else { "COPY" };
                let created_by = format!("/bin/sh -c #(nop) {verb} {summary}");
                let key = cache_key(&parent, &created_by, &BTreeMap::new());
                if let Some(id) = (!options.no_cache).then(|| self.cached(&key)).flatten() {
                    say(" ---> Using cache\n".into());
                    return self.adopt(state, id, say);
                }
                let id = self.commit_layer(state, state.config.clone(), tar, created_by)?;
                self.remember(key, &id);
                self.adopt(state, id, say)
            }
            _ => Ok(()),
        }
    }

    fn adopt(
        &self,
        state: &mut StageState,
        id: Digest,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<()> {
        say(format!(" ---> {}\n", short(id.as_str())));
        state.config = (*self.image(&id)?.config).clone();
        if let Some(shell) = &state.config.config.shell {
            state.shell = shell.clone();
        }
        state.image = Some(id);
        Ok(())
    }

    /// Whether `path` exists in the image (looked up through its layers, top first).
    fn path_exists(&self, image: &Digest, path: &str) -> Result<bool> {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return Ok(true);
        }
        for layer in self.runtime.images().layer_paths(image)?.iter().rev() {
            if layer.join(rel).symlink_metadata().is_ok() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A new image: `config` plus one layer made of `tar`.
    fn commit_layer(
        &self,
        state: &StageState,
        mut config: ImageConfig,
        tar: Vec<u8>,
        created_by: String,
    ) -> Result<Digest> {
        let store = self.runtime.images();
        let parent_chain = chain_ids(&config.rootfs.diff_ids).last().cloned();
        let staged = store.layers().stage_allow_empty(
            parent_chain.as_ref(),
            tar.as_slice(),
            store.content(),
        )?;
        let now = berth_store::store::now_rfc3339();
        config.created = Some(now.clone());
        config.rootfs.diff_ids.push(staged.record.diff_id.clone());
        config.history.push(History {
            created: Some(now),
            created_by: Some(created_by),
            ..Default::default()
        });
        Ok(store.create_image(config, vec![staged], state.image.clone())?)
    }

    async fn run_container(
        &self,
        state: &StageState,
        argv: Vec<String>,
        created_by: &str,
        options: &BuildOptions,
        say: &(dyn Fn(String) + Sync),
    ) -> Result<Digest> {
        let image = state.image.clone().ok_or_else(|| {
            step_error("The command cannot run: the image has no filesystem (FROM scratch)")
        })?;
        let mut env: Vec<String> = state.config.config.env.clone().unwrap_or_default();
        for (k, v) in &state.args {
            if !env.iter().any(|e| e.starts_with(&format!("{k}="))) {
                env.push(format!("{k}={v}"));
            }
        }
        let config = json!({
            "Image": image.to_string(),
            "Cmd": argv,
            "Entrypoint": [""],
            "Env": env,
            "WorkingDir": state.config.config.working_dir,
            "User": state.config.config.user,
            "Labels": {"berth.build": "intermediate"},
        });
        let network = if options.network_mode.is_empty() || options.network_mode == "default" {
            "bridge".to_string()
        } else {
            options.network_mode.clone()
        };
        let (id, _) = self
            .runtime
            .create(None, config, json!({"NetworkMode": network}), json!({}))
            .await?;
        say(format!(" ---> Running in {}\n", short(&id)));
        let outcome: Result<Digest> = async {
            let container = self.runtime.find(&id)?;
            let log = container.dir.join(format!("{id}-json.log"));
            let filter = berth_runtime::logs::Filter {
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            self.runtime.start(&id).await?;
            // The step's output is passed on as it is written, not when the step ends.
            let mut follower = berth_runtime::logs::Follower::open(&log);
            let wait = self.runtime.wait(&id, "not-running");
            tokio::pin!(wait);
            let code = loop {
                tokio::select! {
                    code = &mut wait => break code?,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                        for entry in follower.read_new(&filter) {
                            say(entry.log);
                        }
                    }
                }
            };
            for entry in follower.read_new(&filter) {
                say(entry.log);
            }
            if code != 0 {
                return Err(step_error(format!(
                    "The command '{}' returned a non-zero code: {code}",
                    created_by
                )));
            }
            Ok(self.runtime.commit(
                &id,
                CommitOptions {
                    image_config: Some(state.config.clone()),
                    created_by: Some(created_by.to_string()),
                    ..Default::default()
                },
            )?)
        }
        .await;
        // Intermediate containers go, also after a failed step (as with --force-rm).
        let _ = self.runtime.remove(&id, true).await;
        say(format!("Removing intermediate container {}\n", short(&id)));
        outcome
    }

    /// The layer of a COPY/ADD and the summary that names its content for the cache.
    #[allow(clippy::too_many_arguments)]
    async fn copy_layer(
        &self,
        state: &StageState,
        spec: &CopySpec,
        is_add: bool,
        options: &BuildOptions,
        ignore: &Ignore,
        stages: &[Stage],
        built: &[Option<Digest>],
        ex: &(dyn Fn(&str) -> Result<String> + Sync),
    ) -> Result<(Vec<u8>, String)> {
        let dest_raw = ex(&spec.dest)?;
        let workdir = if state.config.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            state.config.config.working_dir.clone()
        };
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{}", workdir.trim_end_matches('/'), dest_raw)
        };
        let dest_is_dir = dest_raw.ends_with('/') || dest_raw == "." || spec.sources.len() > 1;
        let owner = match &spec.chown {
            Some(c) => Some(self.resolve_owner(state, &ex(c)?)?),
            None => None,
        };
        let mode = match &spec.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
                step_error(format!(
                    "invalid --chmod value {m}: an octal mode is expected"
                ))
            })?),
            None => None,
        };
        let mut builder = LayerTar::new(owner, mode);
        let mut hasher = Sha256::new();

        // Heredoc sources: files with the given content.
        for h in &spec.heredocs {
            let target = if dest_is_dir || spec.sources.len() != 1 {
                format!("{}/{}", dest.trim_end_matches('/'), h.name)
            } else {
                dest.clone()
            };
            hasher.update(target.as_bytes());
            hasher.update(h.content.as_bytes());
            builder.file(&target, h.content.as_bytes(), 0o644)?;
        }

        // ADD's URL sources, fetched first.
        for source in &spec.sources {
            let source = ex(source)?;
            if !(is_add && (source.starts_with("http://") || source.starts_with("https://"))) {
                continue;
            }
            let data = fetch_url(&source).await?;
            if let Some(expected) = &spec.checksum {
                let got = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
                if &got != expected {
                    return Err(step_error(format!(
                        "ADD failed: checksum of {source} is {got}, not {expected}"
                    )));
                }
            }
            let name = source
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("download")
                .to_string();
            let target = if dest_is_dir || dest_raw.ends_with('/') {
                format!("{}/{name}", dest.trim_end_matches('/'))
            } else {
                dest.clone()
            };
            hasher.update(source.as_bytes());
            hasher.update(&data);
            builder.file(&target, &data, 0o600)?;
        }

        // Where the sources come from: the context, another stage, or an image.
        let mut mounted = None;
        let root: PathBuf = match &spec.from {
            None => options.context.clone(),
            Some(from) => {
                let from = ex(from)?;
                let image = if let Ok(i) = from.parse::<usize>() {
                    built.get(i).cloned().flatten()
                } else if let Some(i) = stages.iter().position(|s| {
                    s.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&from))
                }) {
                    built.get(i).cloned().flatten()
                } else {
                    Some(
                        self.runtime
                            .images()
                            .resolve(&from)
                            .map_err(|_| {
                                step_error(format!(
                                    "invalid from flag value {from}: pull access denied for {from}"
                                ))
                            })?
                            .image
                            .id,
                    )
                };
                let image =
                    image.ok_or_else(|| step_error(format!("invalid from flag value {from}")))?;
                let lowers = self.runtime.images().layer_paths(&image)?;
                let guard = self.runtime.images().temp_dir()?;
                let dir = guard.path().join("rootfs");
                std::fs::create_dir_all(&dir).map_err(|e| step_error(format!("{e}")))?;
                mount_read_only(&lowers, &dir)?;
                mounted = Some((guard, dir.clone()));
                dir
            }
        };
        let result = (|| -> Result<()> {
            for source in &spec.sources {
                let source = ex(source)?;
                if is_add && (source.starts_with("http://") || source.starts_with("https://")) {
                    continue;
                }
                let matches =
                    resolve_sources(&root, &source, spec.from.is_none().then_some(ignore))?;
                for (rel, path) in matches {
                    let meta = path
                        .symlink_metadata()
                        .map_err(|e| step_error(format!("{e}")))?;
                    if meta.is_dir() {
                        builder.tree(
                            &path,
                            &dest,
                            &mut hasher,
                            spec.from.is_none().then_some((ignore, rel.as_str())),
                        )?;
                    } else if is_add && spec.from.is_none() && is_archive(&path) {
                        builder.archive(&path, &dest, &mut hasher)?;
                    } else {
                        let name = Path::new(&rel)
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_default();
                        let target = if dest_is_dir {
                            format!("{}/{name}", dest.trim_end_matches('/'))
                        } else {
                            dest.clone()
                        };
                        builder.path(&path, &target, &mut hasher)?;
                    }
                }
            }
            Ok(())
        })();
        if let Some((_guard, dir)) = mounted.take() {
            let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        }
        result?;
        let digest = hex::encode(hasher.finalize());
        let tar = builder.finish()?;
        Ok((tar, format!("file:{digest} in {dest}")))
    }

    fn resolve_owner(&self, state: &StageState, spec: &str) -> Result<(u64, u64)> {
        let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
        let lookup = |file: &str, name: &str| -> Option<u64> {
            if let Ok(n) = name.parse() {
                return Some(n);
            }
            let image = state.image.as_ref()?;
            for layer in self.runtime.images().layer_paths(image).ok()?.iter().rev() {
                if let Ok(text) = std::fs::read_to_string(layer.join("etc").join(file)) {
                    for line in text.lines() {
                        let fields: Vec<&str> = line.split(':').collect();
                        if fields.len() > 2 && fields[0] == name {
                            return fields[2].parse().ok();
                        }
                    }
                    return None;
                }
            }
            None
        };
        let uid = lookup("passwd", user).ok_or_else(|| {
            step_error(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ))
        })?;
        let gid = if group == user && !spec.contains(':') {
            // A user alone: its primary group from passwd, else the same number.
            lookup("group", group).unwrap_or(uid)
        } else {
            lookup("group", group).ok_or_else(|| {
                step_error(format!(
                    "unable to find group {group}: no matching entries in group file"
                ))
            })?
        };
        Ok((uid, gid))
    }
}

/// ADD's download: plain HTTP, as tests and local mirrors serve; up to 1 GiB.
async fn fetch_url(url: &str) -> Result<Vec<u8>> {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    > = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| step_error(format!("ADD failed: invalid URL {url}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(step_error(format!(
            "ADD failed: {url}: only http:// URLs can be downloaded by this berthd"
        )));
    }
    let response = client
        .get(uri)
        .await
        .map_err(|e| step_error(format!("ADD failed: Get \"{url}\": {e}")))?;
    if !response.status().is_success() {
        return Err(step_error(format!(
            "ADD failed: failed to GET {url} with status {}",
            response.status()
        )));
    }
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| step_error(format!("ADD failed: reading {url}: {e}")))?;
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
            if data.len() > (1 << 30) {
                return Err(step_error(format!(
                    "ADD failed: {url} is larger than 1 GiB"
                )));
            }
        }
    }
    Ok(data)
}

fn command_argv(command: &Command, shell: &[String]) -> Vec<String> {
    match command {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut argv = shell.to_vec();
            argv.push(s.clone());
            argv
        }
    }
}

fn cache_key(parent: &str, text: &str, args: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update(b"\0");
    h.update(text.as_bytes());
    for (k, v) in args {
        h.update(b"\0");
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Stages `target` depends on, in file order.
fn needed_stages(stages: &[Stage], target: usize) -> Vec<usize> {
    let find = |name: &str| -> Option<usize> {
        if let Ok(i) = name.parse::<usize>() {
            return Some(i);
        }
        stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    };
    let mut needed = HashSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if i >= stages.len() || !needed.insert(i) {
            continue;
        }
        if let Some(j) = find(&stages[i].base).filter(|j| *j < i) {
            todo.push(j);
        }
        for instruction in &stages[i].instructions {
            if let Kind::Copy(spec) | Kind::Add(spec) = &instruction.kind {
                if let Some(from) = &spec.from {
                    if let Some(j) = find(from).filter(|j| *j < i) {
                        todo.push(j);
                    }
                }
            }
        }
    }
    let mut out: Vec<usize> = needed.into_iter().collect();
    out.sort_unstable();
    out
}

/// `root/rel`, refusing anything that leaves `root`.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => {
                out.push(p);
                depth += 1;
            }
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The context paths a COPY source names (a path or a pattern in its last part).
fn resolve_sources(
    root: &Path,
    source: &str,
    ignore: Option<&Ignore>,
) -> Result<Vec<(String, PathBuf)>> {
    let cleaned = source.trim_start_matches('/');
    if Path::new(cleaned)
        .components()
        .any(|c| c == Component::ParentDir)
        && safe_join(root, cleaned).is_none()
    {
        return Err(step_error(format!(
            "COPY failed: forbidden path outside the build context: {source} ()"
        )));
    }
    let path = safe_join(root, cleaned).ok_or_else(|| {
        step_error(format!(
            "COPY failed: forbidden path outside the build context: {source} ()"
        ))
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let excluded = |rel: &str| ignore.is_some_and(|i| i.is_excluded(rel));
    if name.contains(['*', '?', '[']) {
        let dir = path.parent().unwrap_or(root);
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if glob_match(&name, &n) {
                    let rel = e
                        .path()
                        .strip_prefix(root)
                        .map(|p| p.to_string_lossy().to_string())
                        .unwrap_or_default();
                    if !excluded(&rel) {
                        found.push((rel, e.path()));
                    }
                }
            }
        }
        found.sort();
        if found.is_empty() {
            return Err(step_error(format!(
                "COPY failed: no source files were specified"
            )));
        }
        return Ok(found);
    }
    let rel = if cleaned.is_empty() || cleaned == "." {
        String::new()
    } else {
        cleaned.trim_end_matches('/').to_string()
    };
    if path.symlink_metadata().is_err() || (!rel.is_empty() && excluded(&rel)) {
        return Err(step_error(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {source}: file does not exist"
        )));
    }
    Ok(vec![(rel, path)])
}

fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn is_archive(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok((_, mut reader)) = berth_store::compression::decompress(file) else {
        return false;
    };
    let mut header = [0u8; 512];
    if reader.read_exact(&mut header).is_err() {
        return false;
    }
    &header[257..262] == b"ustar"
}

fn mount_read_only(lowers: &[PathBuf], target: &Path) -> Result<()> {
    let joined: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    let options = if joined.len() == 1 {
        // overlayfs needs two lowers without an upper; one layer is bind-mounted.
        rustix::mount::mount_bind(&lowers[0], target)
            .map_err(|e| step_error(format!("mounting the source image: {e}")))?;
        return Ok(());
    } else {
        format!("lowerdir={}", joined.join(":"))
    };
    let data = std::ffi::CString::new(options).map_err(|e| step_error(e.to_string()))?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        rustix::mount::MountFlags::RDONLY,
        Some(data.as_c_str()),
    )
    .map_err(|e| step_error(format!("mounting the source image: {e}")))
}

/// A tar of directory entries for `path` (WORKDIR's mkdir -p).
fn directory_tar(path: &str) -> Result<Vec<u8>> {
    let mut b = LayerTar::new(None, None);
    b.dirs_to(path.trim_end_matches('/'))?;
    let rel = path.trim_start_matches('/').trim_end_matches('/');
    if !rel.is_empty() {
        b.dir(rel, 0o755)?;
    }
    b.finish()
}

/// The tar of a COPY/ADD layer, with owner and mode overrides.
struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
    owner: Option<(u64, u64)>,
    mode: Option<u32>,
    dirs: HashSet<String>,
}

impl LayerTar {
    fn new(owner: Option<(u64, u64)>, mode: Option<u32>) -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        LayerTar {
            builder,
            owner,
            mode,
            dirs: HashSet::new(),
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(self.mode.unwrap_or(mode));
        h.set_size(size);
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(0);
        h
    }

    /// Parent directories of `target` (absolute), made as the image would have them.
    fn dirs_to(&mut self, target: &str) -> Result<()> {
        let rel = target.trim_start_matches('/');
        let parent = Path::new(rel)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let mut acc = PathBuf::new();
        for c in parent.components() {
            acc.push(c);
            let name = acc.to_string_lossy().to_string();
            if self.dirs.insert(name.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                self.builder
                    .append_data(&mut h, format!("{name}/"), std::io::empty())
                    .map_err(|e| step_error(format!("{e}")))?;
            }
        }
        Ok(())
    }

    fn dir(&mut self, rel: &str, mode: u32) -> Result<()> {
        if !self.dirs.insert(rel.to_string()) {
            return Ok(());
        }
        let mut h = self.header(tar::EntryType::Directory, mode, 0);
        self.builder
            .append_data(&mut h, format!("{rel}/"), std::io::empty())
            .map_err(|e| step_error(format!("{e}")))
    }

    fn file(&mut self, target: &str, data: &[u8], mode: u32) -> Result<()> {
        self.dirs_to(target)?;
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder
            .append_data(&mut h, target.trim_start_matches('/'), data)
            .map_err(|e| step_error(format!("{e}")))
    }

    /// One file or symlink from the host at `target`.
    fn path(&mut self, path: &Path, target: &str, hasher: &mut Sha256) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = path
            .symlink_metadata()
            .map_err(|e| step_error(format!("{e}")))?;
        hasher.update(target.as_bytes());
        hasher.update(meta.mode().to_le_bytes());
        self.dirs_to(target)?;
        let name = target.trim_start_matches('/');
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(path).map_err(|e| step_error(format!("{e}")))?;
            hasher.update(link.to_string_lossy().as_bytes());
            let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
            self.builder
                .append_link(&mut h, name, &link)
                .map_err(|e| step_error(format!("{e}")))?;
            return Ok(());
        }
        let data =
            std::fs::read(path).map_err(|e| step_error(format!("{}: {e}", path.display())))?;
        hasher.update(&data);
        let mut h = self.header(
            tar::EntryType::Regular,
            meta.mode() & 0o7777,
            data.len() as u64,
        );
        self.builder
            .append_data(&mut h, name, data.as_slice())
            .map_err(|e| step_error(format!("{e}")))
    }

    /// A directory's contents under `target`, skipping what .dockerignore excludes.
    fn tree(
        &mut self,
        dir: &Path,
        target: &str,
        hasher: &mut Sha256,
        ignore: Option<(&Ignore, &str)>,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let rel_target = target
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if !rel_target.is_empty() {
            self.dirs_to(target.trim_end_matches('/'))?;
            let mode = dir.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0o755);
            self.dir(&rel_target, mode)?;
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| step_error(format!("{}: {e}", dir.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            let context_rel = ignore.map(|(_, base)| {
                if base.is_empty() {
                    name.clone()
                } else {
                    format!("{base}/{name}")
                }
            });
            if let (Some((ig, _)), Some(rel)) = (ignore, &context_rel) {
                if ig.is_excluded(rel) {
                    continue;
                }
            }
            let child_target = format!("{}/{name}", target.trim_end_matches('/'));
            let meta = e
                .path()
                .symlink_metadata()
                .map_err(|e| step_error(format!("{e}")))?;
            if meta.is_dir() {
                let next = ignore.map(|(ig, _)| (ig, context_rel.as_deref().unwrap_or("")));
                self.tree(&e.path(), &child_target, hasher, next)?;
            } else {
                self.path(&e.path(), &child_target, hasher)?;
            }
        }
        Ok(())
    }

    /// ADD of a local archive: its entries, under `dest`.
    fn archive(&mut self, path: &Path, dest: &str, hasher: &mut Sha256) -> Result<()> {
        let file = std::fs::File::open(path).map_err(|e| step_error(format!("{e}")))?;
        let (_, reader) =
            berth_store::compression::decompress(file).map_err(|e| step_error(format!("{e}")))?;
        let mut archive = tar::Archive::new(reader);
        let base = dest
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if !base.is_empty() {
            self.dirs_to(dest.trim_end_matches('/'))?;
            self.dir(&base, 0o755)?;
        }
        for entry in archive.entries().map_err(|e| step_error(format!("{e}")))? {
            let mut entry = entry.map_err(|e| step_error(format!("{e}")))?;
            let name = entry
                .path()
                .map_err(|e| step_error(format!("{e}")))?
                .to_path_buf();
            if name.components().any(|c| c == Component::ParentDir) {
                return Err(step_error(format!(
                    "ADD failed: archive entry {} leaves the destination",
                    name.display()
                )));
            }
            let joined = if base.is_empty() {
                name.to_string_lossy().to_string()
            } else {
                format!("{base}/{}", name.to_string_lossy())
            };
            hasher.update(joined.as_bytes());
            let mut header = entry.header().clone();
            if let Some((uid, gid)) = self.owner {
                header.set_uid(uid);
                header.set_gid(gid);
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| step_error(format!("{e}")))?;
            hasher.update(&data);
            if header.entry_type().is_dir() {
                self.dirs.insert(joined.trim_end_matches('/').to_string());
            }
            if let Ok(Some(link)) = entry.link_name() {
                let link = link.to_path_buf();
                self.builder
                    .append_link(&mut header, &joined, &link)
                    .map_err(|e| step_error(format!("{e}")))?;
            } else {
                self.builder
                    .append_data(&mut header, &joined, data.as_slice())
                    .map_err(|e| step_error(format!("{e}")))?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .map_err(|e| step_error(format!("{e}")))
    }
}
