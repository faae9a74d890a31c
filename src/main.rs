//! The `ecops` binary: see `ecops --help`.

/// mimalloc instead of glibc malloc: writing thousands of small Parquet files
/// churns short-lived buffers; glibc spent about a third of ingest's CPU in
/// malloc/free and held on to freed memory across threads.
///
/// Its purge delay stays at the default (10 ms; `MIMALLOC_PURGE_DELAY` sets
/// it): purging freed pages at once cost ingest about 8 % of its CPU in
/// `madvise` TLB shootdowns and page refaults, to save about 7 MiB of peak
/// RSS on a 100 000-item ingest.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ecops::cli::main()
}
