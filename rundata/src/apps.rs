// SPDX-License-Identifier: GPL-2.0-only
//! The application suite (`loadgen app`, `study run --apps`): real programs
//! from the distribution's packages, each with its workload, its primary
//! metric and the metric's direction. The one home of their names,
//! packages and metrics: loadgen runs them from this table, `scripts/setup
//! --apps` installs `packages()`, and the analysis reads directions here.
//!
//! An application's run is recorded as a `bench.json` (crate::bench::Bench)
//! whose `kind` is the application's name, with the primary metric first
//! in its `metrics`.

/// What kind of program it is (the paper's categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// CPU-parallel compute.
    Compute,
    /// A parallel build.
    Build,
    /// A database server and its benchmark client.
    Database,
    /// A request/response server and its load generator.
    Server,
    /// A scheduler stressor.
    Stressor,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Compute => "compute",
            Category::Build => "build",
            Category::Database => "database",
            Category::Server => "server",
            Category::Stressor => "stressor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct App {
    /// Its name on the command line and in bench.json's `kind`.
    pub name: &'static str,
    pub category: Category,
    /// The Debian packages it needs (scripts/setup --apps installs them).
    pub packages: &'static [&'static str],
    /// The programs it runs (a missing one fails the run before any
    /// application ran, naming `packages`); every application also needs
    /// perf (linux-perf) for its migrations.
    pub programs: &'static [&'static str],
    /// Its primary metric: name in bench.json, unit, and whether higher is better.
    pub metric: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// The workload, in a line.
    pub about: &'static str,
    /// A second program's metric reported beside the primary one (the
    /// paper's multi-application case: fibo beside sysbench): its name in
    /// bench.json, unit, whether higher is better, and the program.
    pub companion: Option<Companion>,
}

/// A second program's metric (App::companion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Companion {
    pub metric: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub program: &'static str,
}

const fn app(
    name: &'static str,
    category: Category,
    packages: &'static [&'static str],
    programs: &'static [&'static str],
    metric: (&'static str, &'static str, bool),
    about: &'static str,
) -> App {
    App { name, category, packages, programs, metric: metric.0, unit: metric.1, higher_is_better: metric.2, about, companion: None }
}

use Category::*;

/// The suite, in the order a run goes through it (the first of each
/// category is the cheapest: check-native's short suite runs those).
pub const APPS: [App; 15] = [
    app("pigz", Compute, &["pigz"], &["pigz"], ("mb_per_s", "MB/s", true),
        "pigz -6 compressing a generated text corpus on every CPU: input MB per second"),
    app("7zip", Compute, &["7zip"], &["7zz"], ("mb_per_s", "MB/s", true),
        "7-Zip (7zz a -mx=5 -md=256k: LZMA2 in 1 MiB blocks) compressing the same corpus, one thread per CPU: input MB per second"),
    app("x264", Compute, &["x264"], &["x264"], ("fps", "frames/s", true),
        "x264 encoding a generated 640x360 clip (preset medium, one thread per CPU): frames per second"),
    app("xz", Compute, &["xz-utils"], &["xz"], ("mb_per_s", "MB/s", true),
        "xz -3 compressing the same corpus in 1 MiB blocks, one thread per CPU: input MB per second"),
    app("zstd", Compute, &["zstd"], &["zstd"], ("mb_per_s", "MB/s", true),
        "zstd -12 compressing the same corpus in 1 MiB jobs, one thread per CPU: input MB per second"),
    app("povray", Compute, &["povray"], &["povray"], ("render_s", "s", false),
        "POV-Ray rendering a generated scene (reflective spheres, area light) on every CPU: seconds"),
    app("build", Build, &["make", "gcc", "libelf-dev", "zlib1g-dev"], &["make", "gcc"], ("build_s", "s", false),
        "make -j<CPUs> of libbpf's C sources (the copy cargo fetched for libbpf-sys): seconds"),
    app("pgbench", Database, &["postgresql"], &["pgbench"], ("tps", "transactions/s", true),
        "pgbench's TPC-B-like transactions against PostgreSQL on a Unix socket, one client per CPU: transactions per second"),
    app("sysbench", Database, &["sysbench", "mariadb-server", "mariadb-client"], &["sysbench", "mariadbd", "mariadb-install-db", "mariadb"], ("tps", "transactions/s", true),
        "sysbench oltp_read_write against MariaDB on a Unix socket (the paper's sysbench on MySQL), one thread per CPU: transactions per second"),
    App {
        companion: Some(Companion { metric: "fibo_per_s", unit: "computations/s", higher_is_better: true, program: "fibo" }),
        ..app("sysbench-fibo", Database, &["sysbench", "mariadb-server", "mariadb-client"], &["sysbench", "mariadbd", "mariadb-install-db", "mariadb"], ("tps", "transactions/s", true),
        "the paper's multi-application case: sysbench as above beside fibo, one CPU-bound thread per CPU computing Fibonacci numbers recursively: sysbench's transactions/s, and fibo's computations/s beside")
    },
    app("nginx", Server, &["nginx", "wrk"], &["nginx", "wrk"], ("requests_per_s", "requests/s", true),
        "nginx (one worker per CPU) serving a 4 KiB file to wrk over loopback, 4 connections per CPU: requests per second"),
    app("redis", Server, &["redis-server", "redis-tools"], &["redis-server", "redis-benchmark"], ("requests_per_s", "requests/s", true),
        "redis-server answering redis-benchmark's SET and GET over loopback, 50 clients: requests per second"),
    app("memcached", Server, &["memcached", "libmemcached-tools"], &["memcached", "memcaslap"], ("ops_per_s", "operations/s", true),
        "memcached (one thread per CPU) answering memcaslap's gets and sets (9:1) over loopback, 4 connections per CPU: operations per second"),
    app("hackbench", Stressor, &["rt-tests"], &["hackbench"], ("messages_per_s", "messages/s", true),
        "hackbench, threads over UNIX sockets, one group per 4 CPUs: messages per second"),
    app("perf-messaging", Stressor, &["linux-perf"], &["perf"], ("time_s", "s", false),
        "perf bench sched messaging, processes over UNIX sockets, one group per 4 CPUs: seconds"),
];

/// The application named NAME.
pub fn by_name(name: &str) -> Option<&'static App> {
    APPS.iter().find(|a| a.name == name)
}

pub fn names() -> Vec<&'static str> {
    APPS.iter().map(|a| a.name).collect()
}

/// Every package the suite needs, once each, in the table's order.
pub fn packages() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for p in APPS.iter().flat_map(|a| a.packages.iter().copied()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_category_has_one() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), APPS.len());
        for c in [Compute, Build, Database, Server, Stressor] {
            assert!(APPS.iter().any(|a| a.category == c), "no {}", c.name());
        }
        assert_eq!(by_name("nginx").unwrap().metric, "requests_per_s");
        assert!(by_name("apache").is_none());
        // Packages are listed once each.
        let p = packages();
        assert!(p.iter().filter(|x| **x == "zlib1g-dev").count() == 1 && p.contains(&"wrk"));
    }
}
