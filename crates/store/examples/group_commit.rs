//! The embedded store's group commit on its own, without HTTP or WebSockets in the way: rounds
//! of conditional updates, one per writer and each on its own document, all in flight at once,
//! so every round is one batch (with `stream` as the third argument, messages published to a
//! stream of each writer's instead). Prints writes per second, and the process's CPU time and
//! context switches per write, for each round; compare the best rounds of two builds (the
//! machine's noise only adds; the context switches it barely moves).
//! Then reads one document's stream as a client catching up on it does: from the start, a page
//! of 1,000 at a time, and the newest 100 events, the writers' streams interleaved in the log.
//!
//! ```sh
//! taskset -c 1 cargo run --release -p ferrosync-store --example group_commit -- [writers] [rounds] [stream]
//! ```

use ferrosync_core::model::{ObjectKind, ObjectRef, OpenMode};
use ferrosync_core::sid::{Sid, SidKind};
use ferrosync_core::store::{Actor, Mutation, Outcome, Store};
use ferrosync_store::sqlite::{Durability, SqliteStore};
use std::sync::Arc;
use std::time::Instant;

/// Batches each round commits.
const BATCHES: u64 = 1000;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let writers = args.next().transpose()?.unwrap_or(16);
    let rounds = args.next().transpose()?.unwrap_or(8);
    let kind = match std::env::args().nth(3).as_deref() {
        Some("stream") => ObjectKind::Stream,
        _ => ObjectKind::Document,
    };
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run(writers, rounds, kind))
}

async fn run(writers: usize, rounds: usize, kind: ObjectKind) -> Result<(), Failure> {
    let dir = tempfile::tempdir()?;
    // Fsync at checkpoints: the figure is the commit's CPU, not the disk's flush.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("data.db"), Durability::Normal)?);
    let service = Sid::new(SidKind::Service);
    let create = Mutation::CreateService {
        sid: service.clone(),
        unique_name: None,
        friendly_name: None,
        acl_enabled: false,
        settings: Default::default(),
    };
    store.execute(Actor::SYSTEM, create).await?;
    let mut documents = Vec::with_capacity(writers);
    for i in 0..writers {
        let open = Mutation::OpenObject {
            service: service.clone(),
            kind,
            target: Some(ObjectRef::UniqueName(format!("doc-{i}"))),
            mode: OpenMode::OpenOrCreate,
            ttl: None,
            data: None,
        };
        match store.execute(Actor::SYSTEM, open).await?.outcome {
            Outcome::Object { object, .. } => documents.push((object.sid, 0)),
            other => return Err(format!("opening a document answered {other:?}").into()),
        }
    }
    for round in 1..=rounds {
        let (started, cpu, switches) = (Instant::now(), process_cpu_seconds()?, context_switches()?);
        for n in 0..BATCHES {
            let mut batch = tokio::task::JoinSet::new();
            for (sid, revision) in &documents {
                let update = match kind {
                    ObjectKind::Stream => Mutation::Publish {
                        service: service.clone(),
                        target: ObjectRef::Sid(sid.clone()),
                        message_sid: Sid::new(SidKind::StreamMessage),
                        data: serde_json::json!({ "n": n }),
                    },
                    _ => Mutation::UpdateObject {
                        service: service.clone(),
                        kind,
                        target: ObjectRef::Sid(sid.clone()),
                        data: Some(serde_json::json!({ "n": n })),
                        ttl: None,
                        if_match: Some(*revision),
                    },
                };
                let store = store.clone();
                batch.spawn(async move { store.execute(Actor::SYSTEM, update).await.map(drop) });
            }
            while let Some(done) = batch.join_next().await {
                done??;
            }
            documents.iter_mut().for_each(|(_, revision)| *revision += 1);
        }
        let writes = (BATCHES as usize * writers) as f64;
        let (elapsed, cpu) = (started.elapsed().as_secs_f64(), process_cpu_seconds()? - cpu);
        let switches = (context_switches()? - switches) as f64;
        println!(
            "round {round}: {:.0} writes/s, {:.1} µs of CPU and {:.2} context switches per write",
            writes / elapsed,
            cpu * 1e6 / writes,
            switches / writes
        );
    }
    let Some((document, _)) = documents.first() else { return Ok(()) };
    let (started, mut after, mut read) = (Instant::now(), 0, 0);
    loop {
        let page = store.events(&service, after, Some(document), 1000).await?;
        let Some(last) = page.last() else { break };
        (after, read) = (last.seq, read + page.len());
    }
    println!("one document's whole stream: {read} events in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    let head = store.service(&ObjectRef::Sid(service.clone())).await?.map_or(0, |s| s.head_seq);
    let started = Instant::now();
    let newest = store.events(&service, head.saturating_sub(100 * writers as u64), Some(document), 1000).await?;
    println!("its newest {} events: {:.2} ms", newest.len(), started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

/// Context switches of every thread of this process so far, voluntary or not: the wake-ups
/// between the runtime and the writer thread (its answers, its jobs) show here, where the
/// machine's noise does not.
fn context_switches() -> Result<u64, Failure> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let status = std::fs::read_to_string(task?.path().join("status"))?;
        for line in status.lines() {
            if let Some((key, value)) = line.split_once(':')
                && key.ends_with("ctxt_switches")
            {
                total += value.trim().parse::<u64>()?;
            }
        }
    }
    Ok(total)
}

/// User and system time of this process so far (every thread: the writer's and the
/// checkpointer's included).
fn process_cpu_seconds() -> Result<f64, Failure> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).ok_or("an unreadable /proc/self/stat");
    // utime and stime, in clock ticks of 1/100 s on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}
