//! The `remote-reindex` binary: see [`remote_reindex::cli`].

fn main() {
    std::process::exit(remote_reindex::cli::main());
}
