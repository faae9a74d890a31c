//! A fault-injecting [`ObjectStore`] wrapper, for tests and manual drills.
//!
//! [`open_location`](crate::store::open_location) wraps every store in a
//! [`FaultyStore`] when the environment variable `ECOPS_FAULTS` is set (and
//! logs a warning through `tracing`: stderr for the CLI, the Logs pane in
//! the console). The engines see an ordinary store
//! whose requests sometimes fail the way a real S3 endpoint fails:
//!
//! ```text
//! ECOPS_FAULTS="seed=7,latency_ms=5,error_rate=0.1,slowdown_rate=0.05,truncate_rate=0.02,fail_nth_put=3:warehouse/**"
//! ```
//!
//! | key | effect |
//! | --- | --- |
//! | `seed=N` | seed of the fault dice (default 0); the same seed gives the same sequence of decisions for the same sequence of requests |
//! | `latency_ms=N` | every request waits a uniformly drawn 0..=N ms first |
//! | `error_rate=P` | a request fails with a 500 InternalError |
//! | `slowdown_rate=P` | a request fails with a 503 SlowDown |
//! | `timeout_rate=P` | a request waits `timeout_ms` (default 200) and fails with a timeout |
//! | `reset_rate=P` | a request fails with "connection reset by peer" |
//! | `truncate_rate=P` | a successful get's body stops early with a body error |
//! | `ack_loss_rate=P` | a put is performed and then reported as timed out (the caller cannot know it landed) |
//! | `fail_nth_put=N:GLOB` | the N-th put (1-based) whose key matches GLOB fails with a 503 (repeatable key) |
//! | `fail_nth_get=N:GLOB` | the same for gets (including heads and range reads) |
//! | `only=GLOB` | random faults (the `*_rate` keys) only hit keys matching GLOB |
//! | `quiet=1` | do not log each injected fault |
//!
//! Globs match object keys at a segment boundary anywhere in the key (`warehouse/**`
//! matches `tmp/x/cat/warehouse/a/b.parquet`): `*` is any run of characters
//! within a segment, `**` any run of segments, `?` one character.
//!
//! Injected errors are `object_store::Error::Generic` (or the matching variant)
//! with the message a real S3 client gives, plus `(injected by ECOPS_FAULTS)`.
//! They are raised *above* object_store's own HTTP retry layer, so they show
//! what the engines do when a request fails for good.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Name of the environment variable holding a [`FaultPlan`].
pub const FAULTS_ENV: &str = "ECOPS_FAULTS";

/// A plan parse error.
#[derive(Debug, thiserror::Error)]
#[error("{FAULTS_ENV}: {0}")]
pub struct FaultPlanError(String);

/// Fail the `nth` request of a kind whose key matches `pattern`.
#[derive(Debug, Clone, PartialEq)]
pub struct NthFault {
    pub nth: u64,
    pub pattern: Glob,
}

/// What to inject; see the module docs for the text form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    pub seed: u64,
    pub latency_ms: u64,
    pub error_rate: f64,
    pub slowdown_rate: f64,
    pub timeout_rate: f64,
    pub timeout_ms: u64,
    pub reset_rate: f64,
    pub truncate_rate: f64,
    pub ack_loss_rate: f64,
    pub fail_nth_put: Vec<NthFault>,
    pub fail_nth_get: Vec<NthFault>,
    pub only: Option<Glob>,
    pub quiet: bool,
}

impl FaultPlan {
    /// Parses `key=value,key=value`.
    pub fn parse(text: &str) -> Result<Self, FaultPlanError> {
        let mut plan = FaultPlan {
            timeout_ms: 200,
            ..Default::default()
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| FaultPlanError(format!("'{part}' is not key=value")))?;
            let (key, value) = (key.trim(), value.trim());
            let int = || {
                value
                    .parse::<u64>()
                    .map_err(|_| FaultPlanError(format!("{key}: '{value}' is not an integer")))
            };
            let rate = || match value.parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                _ => Err(FaultPlanError(format!(
                    "{key}: '{value}' is not a probability in 0..1"
                ))),
            };
            let nth = || {
                let (n, pattern) = value.split_once(':').unwrap_or((value, "**"));
                let nth =
                    n.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        FaultPlanError(format!("{key}: '{n}' is not a count ≥ 1"))
                    })?;
                Ok::<_, FaultPlanError>(NthFault {
                    nth,
                    pattern: Glob::new(pattern),
                })
            };
            match key {
                "seed" => plan.seed = int()?,
                "latency_ms" => plan.latency_ms = int()?,
                "timeout_ms" => plan.timeout_ms = int()?,
                "error_rate" => plan.error_rate = rate()?,
                "slowdown_rate" => plan.slowdown_rate = rate()?,
                "timeout_rate" => plan.timeout_rate = rate()?,
                "reset_rate" => plan.reset_rate = rate()?,
                "truncate_rate" => plan.truncate_rate = rate()?,
                "ack_loss_rate" => plan.ack_loss_rate = rate()?,
                "fail_nth_put" => plan.fail_nth_put.push(nth()?),
                "fail_nth_get" => plan.fail_nth_get.push(nth()?),
                "only" => plan.only = Some(Glob::new(value)),
                "quiet" => plan.quiet = matches!(value, "1" | "true" | "yes"),
                other => return Err(FaultPlanError(format!("unknown key '{other}'"))),
            }
        }
        let total = plan.error_rate + plan.slowdown_rate + plan.timeout_rate + plan.reset_rate;
        if total > 1.0 {
            return Err(FaultPlanError(format!(
                "error, slowdown, timeout and reset rates add up to {total} > 1"
            )));
        }
        Ok(plan)
    }

    /// The plan in `ECOPS_FAULTS`, if set and not empty.
    pub fn from_env() -> Result<Option<Self>, FaultPlanError> {
        match std::env::var(FAULTS_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text).map(Some),
            _ => Ok(None),
        }
    }
}

/// A small glob over `/`-separated keys, matched at any segment boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob(pattern.trim_matches('/').to_string())
    }

    /// True when the pattern matches `key` or a suffix of it starting after a `/`.
    pub fn matches(&self, key: &str) -> bool {
        let key = key.trim_start_matches('/');
        let pat: Vec<&str> = self.0.split('/').collect();
        let mut start = 0;
        loop {
            let segs: Vec<&str> = key[start..].split('/').collect();
            if match_segments(&pat, &segs) {
                return true;
            }
            match key[start..].find('/') {
                Some(i) => start += i + 1,
                None => return false,
            }
        }
    }
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.first() {
        None => segs.is_empty(),
        Some(&"**") => (0..=segs.len()).any(|i| match_segments(&pat[1..], &segs[i..])),
        Some(p) => {
            !segs.is_empty()
                && match_segment(p.as_bytes(), segs[0].as_bytes())
                && match_segments(&pat[1..], &segs[1..])
        }
    }
}

fn match_segment(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| match_segment(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && match_segment(&p[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && match_segment(&p[1..], &s[1..]),
    }
}

/// A deterministic generator (SplitMix64): no dependency, reproducible from a seed.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The kinds of fault, for messages and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    InternalError,
    SlowDown,
    Timeout,
    Reset,
    Truncated,
    AckLost,
    NthPut,
    NthGet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    Other,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Other => "REQUEST",
        }
    }
}

/// Counts of what a [`FaultyStore`] did.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub requests: AtomicU64,
    pub injected: AtomicU64,
}

/// The plan and its state (dice, counters); shared by every store of a process
/// opened through [`open_location`](crate::store::open_location), so "the N-th put"
/// counts across them.
#[derive(Debug)]
pub struct FaultState {
    plan: FaultPlan,
    dice: Mutex<Dice>,
    nth_put_seen: Vec<AtomicU64>,
    nth_get_seen: Vec<AtomicU64>,
    stats: Arc<FaultStats>,
}

impl FaultState {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        Arc::new(Self {
            dice: Mutex::new(Dice(plan.seed)),
            nth_put_seen: plan
                .fail_nth_put
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            nth_get_seen: plan
                .fail_nth_get
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            plan,
            stats: Arc::default(),
        })
    }

    /// The process-wide state for the plan in `ECOPS_FAULTS`, or None when unset.
    pub fn from_env() -> Result<Option<Arc<Self>>, FaultPlanError> {
        static STATE: std::sync::OnceLock<Option<Arc<FaultState>>> = std::sync::OnceLock::new();
        if let Some(state) = STATE.get() {
            return Ok(state.clone());
        }
        let state = FaultPlan::from_env()?.map(FaultState::new);
        Ok(STATE.get_or_init(|| state).clone())
    }
}

/// An [`ObjectStore`] that injects the faults of a [`FaultPlan`] into `inner`.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<FaultState>,
}

impl std::ops::Deref for FaultyStore {
    type Target = FaultState;
    fn deref(&self) -> &FaultState {
        &self.state
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// A store with its own fault state.
    pub fn new(inner: Arc<dyn ObjectStore>, plan: FaultPlan) -> Self {
        Self::with_state(inner, FaultState::new(plan))
    }

    /// A store sharing `state` (dice and counters) with other stores.
    pub fn with_state(inner: Arc<dyn ObjectStore>, state: Arc<FaultState>) -> Self {
        Self { inner, state }
    }

    /// Request and fault counters.
    pub fn stats(&self) -> Arc<FaultStats> {
        self.stats.clone()
    }

    fn roll(&self) -> f64 {
        self.dice.lock().unwrap_or_else(|p| p.into_inner()).unit()
    }

    fn note(&self, kind: FaultKind, op: Op, key: &Path) {
        self.stats.injected.fetch_add(1, Ordering::Relaxed);
        if !self.plan.quiet {
            tracing::warn!("fault injected: {kind:?} on {} {key}", op.verb());
        }
    }

    /// Latency, then the fault (if any) that hits this request before it reaches the store.
    async fn before(&self, op: Op, key: &Path) -> Option<object_store::Error> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if self.plan.latency_ms > 0 {
            let ms = (self.roll() * (self.plan.latency_ms + 1) as f64) as u64;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let (nths, seen, kind) = match op {
            Op::Put => (
                &self.plan.fail_nth_put[..],
                &self.nth_put_seen[..],
                FaultKind::NthPut,
            ),
            Op::Get => (
                &self.plan.fail_nth_get[..],
                &self.nth_get_seen[..],
                FaultKind::NthGet,
            ),
            Op::Other => (
                &self.plan.fail_nth_put[..0],
                &self.nth_put_seen[..0],
                FaultKind::NthPut,
            ),
        };
        for (rule, count) in nths.iter().zip(seen) {
            if rule.pattern.matches(key.as_ref())
                && count.fetch_add(1, Ordering::Relaxed) + 1 == rule.nth
            {
                self.note(kind, op, key);
                return Some(injected(op, key, FaultKind::SlowDown));
            }
        }
        if self
            .plan
            .only
            .as_ref()
            .is_some_and(|g| !g.matches(key.as_ref()))
        {
            return None;
        }
        let p = self.roll();
        let plan = &self.plan;
        let kind = if p < plan.error_rate {
            FaultKind::InternalError
        } else if p < plan.error_rate + plan.slowdown_rate {
            FaultKind::SlowDown
        } else if p < plan.error_rate + plan.slowdown_rate + plan.timeout_rate {
            tokio::time::sleep(Duration::from_millis(plan.timeout_ms)).await;
            FaultKind::Timeout
        } else if p < plan.error_rate + plan.slowdown_rate + plan.timeout_rate + plan.reset_rate {
            FaultKind::Reset
        } else {
            return None;
        };
        self.note(kind, op, key);
        Some(injected(op, key, kind))
    }

    fn random_hit(&self, rate: f64, key: &Path) -> bool {
        let in_scope = self
            .plan
            .only
            .as_ref()
            .is_none_or(|g| g.matches(key.as_ref()));
        rate > 0.0 && in_scope && self.roll() < rate
    }
}

/// An error shaped like the one object_store's S3 client returns for `kind`.
fn injected(op: Op, key: &Path, kind: FaultKind) -> object_store::Error {
    let verb = op.verb();
    let message = match kind {
        FaultKind::InternalError => format!(
            "Error performing {verb} {key}: Server returned non-2xx status code: 500 Internal Server Error: <Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"
        ),
        FaultKind::SlowDown | FaultKind::NthPut | FaultKind::NthGet => format!(
            "Error performing {verb} {key}: Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        ),
        FaultKind::Timeout | FaultKind::AckLost => format!(
            "Error performing {verb} {key}: HTTP error: error sending request: operation timed out"
        ),
        FaultKind::Reset => format!(
            "Error performing {verb} {key}: HTTP error: error sending request: connection reset by peer (os error 104)"
        ),
        FaultKind::Truncated => format!(
            "Error performing {verb} {key}: HTTP error: request or response body error: error reading a body from connection: end of file before message length reached"
        ),
    };
    object_store::Error::Generic {
        store: "S3",
        source: format!("{message} (injected by {FAULTS_ENV})").into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if let Some(e) = self.before(Op::Put, location).await {
            return Err(e);
        }
        let result = self.inner.put_opts(location, payload, opts).await?;
        if self.random_hit(self.plan.ack_loss_rate, location) {
            self.note(FaultKind::AckLost, Op::Put, location);
            return Err(injected(Op::Put, location, FaultKind::AckLost));
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if let Some(e) = self.before(Op::Put, location).await {
            return Err(e);
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if let Some(e) = self.before(Op::Get, location).await {
            return Err(e);
        }
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        let len = result.range.end.saturating_sub(result.range.start);
        if head || len == 0 || !self.random_hit(self.plan.truncate_rate, location) {
            return Ok(result);
        }
        self.note(FaultKind::Truncated, Op::Get, location);
        // Deliver a prefix of the body, then fail the way a cut connection does.
        let keep = (self.roll() * len as f64) as u64;
        let (meta, range, attributes) = (
            result.meta.clone(),
            result.range.clone(),
            result.attributes.clone(),
        );
        let key = location.clone();
        let body = result.into_stream();
        let stream =
            futures::stream::unfold((body, keep, false), move |(mut body, mut left, done)| {
                let key = key.clone();
                async move {
                    if done {
                        return None;
                    }
                    if left == 0 {
                        let err = injected(Op::Get, &key, FaultKind::Truncated);
                        return Some((Err(err), (body, 0, true)));
                    }
                    match body.next().await {
                        Some(Ok(mut chunk)) => {
                            if chunk.len() as u64 > left {
                                chunk.truncate(left as usize);
                            }
                            left -= chunk.len() as u64;
                            Some((Ok(chunk), (body, left, false)))
                        }
                        Some(Err(e)) => Some((Err(e), (body, 0, true))),
                        None => {
                            let err = injected(Op::Get, &key, FaultKind::Truncated);
                            Some((Err(err), (body, 0, true)))
                        }
                    }
                }
            })
            .boxed();
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes,
        })
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if let Some(e) = self.before(Op::Get, location).await {
            return Err(e);
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let key = prefix.cloned().unwrap_or_default();
        if let Some(e) = self.before(Op::Other, &key).await {
            return Err(e);
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        if let Some(e) = self.before(Op::Other, to).await {
            return Err(e);
        }
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        if let Some(e) = self.before(Op::Other, to).await {
            return Err(e);
        }
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    fn store(plan: &str) -> FaultyStore {
        let mut plan = FaultPlan::parse(plan).unwrap();
        plan.quiet = true;
        FaultyStore::new(Arc::new(InMemory::new()), plan)
    }

    #[test]
    fn parses_plans_and_rejects_nonsense() {
        let p = FaultPlan::parse(
            "seed=7,latency_ms=5,error_rate=0.1,slowdown_rate=0.05,truncate_rate=0.02,fail_nth_put=3:warehouse/**",
        )
        .unwrap();
        assert_eq!(p.seed, 7);
        assert_eq!(p.latency_ms, 5);
        assert_eq!(p.error_rate, 0.1);
        assert_eq!(p.slowdown_rate, 0.05);
        assert_eq!(p.truncate_rate, 0.02);
        assert_eq!(
            p.fail_nth_put,
            vec![NthFault {
                nth: 3,
                pattern: Glob::new("warehouse/**")
            }]
        );
        assert!(FaultPlan::parse("error_rate=2").is_err());
        assert!(FaultPlan::parse("bogus=1").is_err());
        assert!(FaultPlan::parse("fail_nth_put=0:x").is_err());
        assert!(FaultPlan::parse("seed").is_err());
        assert!(FaultPlan::parse("error_rate=0.6,slowdown_rate=0.6").is_err());
        assert_eq!(FaultPlan::parse("").unwrap().timeout_ms, 200);
    }

    #[test]
    fn globs_match_at_segment_boundaries() {
        let g = Glob::new("warehouse/**");
        assert!(g.matches("tmp/x/cat/warehouse/a/b.parquet"));
        assert!(g.matches("warehouse/a"));
        assert!(!g.matches("tmp/mywarehouse/a"));
        let g = Glob::new("*.metadata.json");
        assert!(g.matches("a/b/00001-x.metadata.json"));
        assert!(!g.matches("a/b/00001-x.metadata.json.tmp"));
        let g = Glob::new("grid_partition=*/year=20?4/*.parquet");
        assert!(g.matches("w/grid_partition=81/year=2024/p.parquet"));
        assert!(!g.matches("w/grid_partition=81/year=2023/p.parquet"));
        assert!(Glob::new("**").matches("anything/at/all"));
    }

    #[tokio::test]
    async fn nth_put_matching_the_pattern_fails_once_like_s3() {
        let s = store("fail_nth_put=2:warehouse/**");
        let w = |i: u32| Path::from(format!("cat/warehouse/f{i}"));
        s.put(&Path::from("cat/other"), "x".into()).await.unwrap();
        s.put(&w(1), "a".into()).await.unwrap();
        let err = s.put(&w(2), "b".into()).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, object_store::Error::Generic { .. }));
        assert!(text.contains("503") && text.contains("SlowDown"), "{text}");
        // The failed put wrote nothing; the next ones succeed.
        assert!(matches!(
            s.get(&w(2)).await,
            Err(object_store::Error::NotFound { .. })
        ));
        s.put(&w(3), "c".into()).await.unwrap();
        s.put(&w(2), "b".into()).await.unwrap();
        assert_eq!(s.stats().injected.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn rates_are_seeded_and_roughly_right() {
        let run = |seed: u64| async move {
            let s = store(&format!("seed={seed},error_rate=0.2,slowdown_rate=0.1"));
            let mut outcomes = vec![];
            for i in 0..1000 {
                let r = s.put(&Path::from(format!("k{i}")), "x".into()).await;
                outcomes.push(match r {
                    Ok(_) => 0u8,
                    Err(e) if e.to_string().contains("500") => 1,
                    Err(e) if e.to_string().contains("503") => 2,
                    Err(e) => panic!("{e}"),
                });
            }
            outcomes
        };
        let a = run(7).await;
        assert_eq!(a, run(7).await, "same seed, same faults");
        assert_ne!(a, run(8).await, "another seed, other faults");
        let errors = a.iter().filter(|&&o| o == 1).count();
        let slow = a.iter().filter(|&&o| o == 2).count();
        assert!((150..250).contains(&errors), "{errors} internal errors");
        assert!((60..140).contains(&slow), "{slow} slowdowns");
    }

    #[tokio::test]
    async fn truncated_bodies_fail_when_read() {
        let s = store("truncate_rate=1");
        let key = Path::from("a/b");
        let body = vec![7u8; 10_000];
        s.put(&key, body.clone().into()).await.unwrap();
        let got = s.get(&key).await.unwrap();
        assert_eq!(got.meta.size, 10_000, "the head looks complete");
        let err = got.bytes().await.unwrap_err().to_string();
        assert!(err.contains("end of file before message length"), "{err}");
        // Heads are never truncated.
        assert_eq!(s.head(&key).await.unwrap().size, 10_000);
    }

    #[tokio::test]
    async fn lost_acks_land_but_report_a_timeout() {
        let s = store("ack_loss_rate=1");
        let key = Path::from("a/lock");
        let err = s.put(&key, "v1".into()).await.unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        // ... and yet the object is there.
        let inner_view = s.inner.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&inner_view[..], b"v1");
    }

    #[tokio::test]
    async fn timeouts_and_resets_and_latency() {
        let s = store("timeout_rate=1,timeout_ms=30");
        let t = std::time::Instant::now();
        let err = s.get(&Path::from("x")).await.unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        assert!(t.elapsed() >= Duration::from_millis(30));
        let s = store("reset_rate=1,only=data/**");
        let err = s
            .put(&Path::from("data/x"), "1".into())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("connection reset"), "{err}");
        s.put(&Path::from("meta/x"), "1".into()).await.unwrap();
        let s = store("latency_ms=40,seed=3");
        let t = std::time::Instant::now();
        for i in 0..10 {
            s.put(&Path::from(format!("k{i}")), "x".into())
                .await
                .unwrap();
        }
        assert!(
            t.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(s.stats().injected.load(Ordering::Relaxed), 0);
        assert_eq!(s.stats().requests.load(Ordering::Relaxed), 10);
    }
}
