//! The Postgres migrations are embedded at compile time (`refinery::embed_migrations!`): a new
//! or changed migration file must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations/postgres");
}
