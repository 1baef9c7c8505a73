//! Forwarded packets per second of wall time through one router, with raw
//! hosts, for 1, 100 and 10,000 flows (the dumbbell in `dumbbell.rs`).
//! Target on the 2-core reference machine: at least 3 million per second,
//! flat across flow counts.
//!
//! The offered load is the same for every flow count (100,000 datagrams per
//! simulated second in all, each flow sending every `flows` × 10 µs), so what
//! changes between the cases is only the size of the topology: 2N hosts, 2N
//! links and 2N router interfaces. Flat figures mean a packet's cost does not
//! grow with the topology.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ctsim_engine::router::Router;
use ctsim_engine::{dumbbell, Duration, Instant, NodeId};

/// Packets per measured run, split evenly over the flows.
const PACKETS: u64 = 200_000;

fn forwarding(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine/forward");
    group.sample_size(10);
    for flows in [1u32, 100, 10_000] {
        let per_flow = PACKETS / u64::from(flows);
        group.throughput(Throughput::Elements(per_flow * u64::from(flows)));
        group.bench_function(format!("raw-udp/{flows}-flows"), |bench| {
            bench.iter_batched(
                || {
                    dumbbell::build(
                        flows,
                        per_flow,
                        Duration::from_micros(10 * u64::from(flows)),
                        false,
                    )
                    .build()
                },
                |mut sim| {
                    sim.run_until(Instant::MAX);
                    let router = sim.node(NodeId(0)).as_any().downcast_ref::<Router>();
                    assert_eq!(
                        router.map(|r| r.stats.forwarded),
                        Some(per_flow * u64::from(flows))
                    );
                    sim
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
