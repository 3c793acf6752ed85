fn main() {
    print!("{}", remote_reindex::api::crd_yaml());
}
