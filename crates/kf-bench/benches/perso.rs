//! Criterion micro benchmark of the DGI plan (kf-perso `PersoPlan::build`)
//! for a specification-sized personalization: device certificate ~424 B, ICA 435 B,
//! root 722 B, a 32-byte private key (DEK-encrypted into DGI A003), a
//! 40-character SPID and a 16-byte IRK, from kf-source's in-memory dev
//! fixtures (generated once, outside the timed loop), at security levels '01'
//! and '33' (the level sets the STORE DATA block capacity).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use kf_perso::{PersoPlan, PlanOptions};
use kf_scp03::SecurityLevel;
use kf_source::{DevSampleSource, ProvisioningInput, ProvisioningSource};

const FOB_UID: [u8; 7] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

fn specification_sized_input() -> ProvisioningInput {
    let mut source = DevSampleSource::generated(1, Some(7)).unwrap();
    source.fetch(&FOB_UID).unwrap()
}

fn bench_plan(c: &mut Criterion) {
    let input = specification_sized_input();
    let mut group = c.benchmark_group("perso_plan_build");
    for level in [SecurityLevel::C_MAC, SecurityLevel::FULL] {
        let options = PlanOptions {
            security_level: level,
            ..PlanOptions::default()
        };
        let plan = PersoPlan::build(&input, &options).unwrap();
        let data: usize = plan.commands().map(|c| c.data().len()).sum();
        eprintln!(
            "plan at level {:02X}: {} STORE DATA commands, {data} bytes of command data",
            level.value(),
            plan.commands().count()
        );
        let id = BenchmarkId::from_parameter(format!("level_{:02X}", level.value()));
        group.bench_function(id, |b| {
            b.iter(|| PersoPlan::build(black_box(&input), &options).unwrap())
        });
    }
    group.finish();
}

common::benchmarks!(bench_plan);
