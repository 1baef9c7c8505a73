//! Driving the kernel: the scenario's instants on the wall clock.
//!
//! Every packet that reached the router in the simulation is injected at
//! its interface at the same instant (after a lead that lets the capture
//! settle), the scenario's commands run at theirs, and the tables are read
//! at every check instant. Timing is real (a scale of 1): Linux's timers
//! run in jiffies and its timeouts are whole seconds, so instants cannot
//! be squeezed without changing what the kernel does.

use std::time::Duration;

use ctsim_engine::Instant;
use ctsim_linux::{interrupt, BuildError, Captured, KernelInfo, Lab, RouterSpec};

use super::packets::{Matcher, Seen};
use super::tables::Snapshot;
use super::{CommandRun, CtsimSide};

/// The scenario's time 0 on the replay's clock.
const LEAD: Duration = Duration::from_millis(200);
/// How long the kernel is given to answer a packet before tables are read.
const SETTLE: Duration = Duration::from_millis(20);

pub(crate) struct KernelSide {
    pub matcher: Matcher,
    /// One per ctsim snapshot, in the same order.
    pub snapshots: Vec<Snapshot>,
    pub commands: Vec<CommandRun>,
    pub info: KernelInfo,
    pub globals: Vec<(String, String)>,
    /// How late the latest step ran against its instant, at most.
    pub max_lag: Duration,
}

enum Step<'a> {
    Command(&'a (Instant, &'static str, String, String)),
    Inject(usize),
    Probe,
}

pub(crate) fn replay(spec: &RouterSpec, ctsim: &CtsimSide) -> Result<KernelSide, BuildError> {
    // At one instant: commands first (the scenario's actions were queued
    // before any packet), then packets, then the tables are read.
    let mut steps: Vec<(Instant, u8, Step)> = Vec::new();
    steps.extend(ctsim.commands.iter().map(|c| (c.0, 0, Step::Command(c))));
    steps.extend((0..ctsim.inputs.len()).map(|i| (ctsim.inputs[i].time, 1, Step::Inject(i))));
    steps.extend(ctsim.snapshots.iter().map(|(at, _)| (*at, 2, Step::Probe)));
    steps.sort_by_key(|(t, order, _)| (*t, *order));

    let lab = Lab::build(spec)?;
    let mut r = Replay {
        lab: &lab,
        matcher: Matcher::new(ctsim.expected.clone()),
        last_input: None,
        last_inject: None,
        max_lag: Duration::ZERO,
    };
    let mut snapshots = Vec::new();
    let mut commands = Vec::new();
    for (at, _, step) in &steps {
        let due = LEAD + Duration::from_nanos(at.nanos());
        r.wait_until(due)?;
        r.max_lag = r.max_lag.max(lab.elapsed().saturating_sub(due));
        match step {
            Step::Inject(i) => {
                r.absorb();
                let packet = r.matcher.ports.translate(&ctsim.inputs[*i].packet);
                lab.inject(usize::from(ctsim.inputs[*i].port), &packet)?;
                r.last_input = Some(*i);
                r.last_inject = Some(lab.elapsed());
            }
            Step::Command((time, tool, args, printed)) => {
                let words: Vec<&str> = args.split_whitespace().collect();
                let out = lab.exec(tool, &words)?;
                let mut linux = String::from_utf8_lossy(&out.stdout).into_owned();
                linux.push_str(&String::from_utf8_lossy(&out.stderr));
                commands.push(CommandRun {
                    time: *time,
                    line: format!("{tool} {args}"),
                    ctsim: printed.clone(),
                    linux: linux.trim_end().to_string(),
                });
            }
            Step::Probe => {
                if let Some(t) = r.last_inject {
                    r.wait_until(t + SETTLE)?;
                }
                r.absorb();
                snapshots.push(read_tables(&lab)?);
            }
        }
    }
    r.wait_until(lab.elapsed() + SETTLE * 5)?;
    r.absorb();
    Ok(KernelSide {
        matcher: r.matcher,
        snapshots,
        commands,
        info: lab.info().clone(),
        globals: lab.global_settings().to_vec(),
        max_lag: r.max_lag,
    })
}

struct Replay<'a> {
    lab: &'a Lab,
    matcher: Matcher,
    last_input: Option<usize>,
    last_inject: Option<Duration>,
    max_lag: Duration,
}

impl Replay<'_> {
    /// Sleeps until the replay's clock reads `t`, taking in what the kernel
    /// sends meanwhile; stops at Ctrl-C.
    fn wait_until(&mut self, t: Duration) -> Result<(), BuildError> {
        loop {
            if interrupt::raised() {
                return Err(BuildError::Interrupted);
            }
            let now = self.lab.elapsed();
            if now >= t {
                return Ok(());
            }
            std::thread::sleep((t - now).min(Duration::from_millis(5)));
            self.absorb();
        }
    }

    /// Pairs what the kernel sent since the last look.
    fn absorb(&mut self) {
        for Captured { at, port, packet } in self.lab.drain() {
            let time = Instant::from_nanos(at.saturating_sub(LEAD).as_nanos() as u64);
            self.matcher.see(Seen {
                time,
                port: port as u16,
                packet,
                matched: None,
                after_input: self.last_input,
            });
        }
    }
}

fn read_tables(lab: &Lab) -> Result<Snapshot, BuildError> {
    let text = |tool: &str, args: &[&str]| -> Result<String, BuildError> {
        let out = lab.exec(tool, args)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    Ok(Snapshot {
        conntrack: Snapshot::lines(&text("conntrack", &["-L"])?),
        expect: Snapshot::lines(&text("conntrack", &["-L", "expect"])?),
        stats: Snapshot::stats(&text("conntrack", &["-S"])?),
        rules: Snapshot::rules(&text("iptables-save", &["-c"])?),
    })
}
