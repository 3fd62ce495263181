use clap::{Parser, Subcommand};
use rail::auth::{Role, TokenRequest};
use rail::settings::Settings;
use rail::startup::{self, Application};
use std::path::PathBuf;

use rail_actors::backup;
use rail_actors::ids::{BranchId, StationId, TableId};

/// Many small allocations a command (requests, events, frames) from several threads: mimalloc
/// spends far less time on them than the system allocator, and fragments less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Realtime order routing for restaurant kitchens.
#[derive(Parser)]
#[command(name = "rail", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine (the default).
    Serve,
    /// Print a device token signed with JWT_SECRET.
    Token {
        #[arg(long)]
        branch: BranchId,
        /// manager, pos, waiter, kitchen or guest.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A kitchen screen's station.
        #[arg(long)]
        station: Option<StationId>,
        /// A guest's table.
        #[arg(long)]
        table: Option<TableId>,
        /// The device's name, shown in logs.
        #[arg(long)]
        device: Option<String>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Copy the embedded journal to a new file, consistently, while the engine runs.
    Backup {
        /// The new file to write (it must not exist).
        #[arg(long)]
        to: PathBuf,
        /// The journal to copy (the settings' journal_path when not given).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
    /// Replace the embedded journal with a backup, once the backup checks out; refused while
    /// an engine runs on the journal.
    Restore {
        /// The backup to restore.
        #[arg(long)]
        from: PathBuf,
        /// The journal to replace (the settings' journal_path when not given).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
}

/// Says why a backup or restore did nothing, and exits with status 1.
fn refuse(e: backup::BackupError) -> ! {
    eprintln!("rail: {e}");
    std::process::exit(1)
}

/// The embedded journal a backup or restore works on; a Postgres journal has its own tools.
fn embedded_journal(settings: &Settings, named: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if named.is_none() && settings.database_url.is_some() {
        anyhow::bail!(
            "this engine's journal is Postgres (DATABASE_URL): back it up with pg_dump or the \
             database's point-in-time recovery (README, Operations); `rail backup` copies the \
             embedded journal"
        );
    }
    Ok(named.unwrap_or_else(|| settings.journal_path.clone()))
}

fn parse_role(raw: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(raw.into()))
        .map_err(|_| "one of manager, pos, waiter, kitchen, guest".into())
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            rail::telemetry::init(settings.log_format);
            let app = Application::build(settings).await?;
            let stopped = app.run_until_stopped().await;
            rail::telemetry::shutdown();
            stopped?;
        }
        Command::Token {
            branch,
            role,
            station,
            table,
            device,
            ttl_hours,
        } => {
            anyhow::ensure!(
                settings.jwt_secret.is_some(),
                "set JWT_SECRET to the deployment's secret to issue tokens"
            );
            let tokens = startup::device_tokens(&settings)?;
            let request = TokenRequest {
                role,
                station,
                table,
                device,
                ttl_seconds: Some(ttl_hours.saturating_mul(3600)),
            };
            let issued = tokens
                .issue(&branch, &request)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!("{}", issued.token);
        }
        Command::Backup { to, journal } => {
            let journal = embedded_journal(&settings, journal)?;
            let copied = backup::backup(&journal, &to).unwrap_or_else(|e| refuse(e));
            println!(
                "backed up {} to {}: {copied}",
                journal.display(),
                to.display()
            );
        }
        Command::Restore { from, journal } => {
            let journal = embedded_journal(&settings, journal)?;
            let restored = backup::restore(&from, &journal).unwrap_or_else(|e| refuse(e));
            println!(
                "restored {} from {}: {restored}",
                journal.display(),
                from.display()
            );
        }
    }
    Ok(())
}
