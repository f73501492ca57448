//! `keelson-shore`: parses the command line and calls the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use keelson_model::ShoreRole;
use keelson_shore::{DEFAULT_CONFIG, ShoreConfig, ShoreState};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

const DEFAULT_PATH: &str = "/etc/keelson/shore.toml";

/// Keelson shore: the fleet's sync endpoint and the shore office UI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the shore server.
    Run {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Print the default configuration.
    PrintDefaultConfig,
    /// Check a configuration file and report the first error.
    CheckConfig {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Copy the shore database to FILE while the shore keeps running.
    Backup {
        /// The backup file to write (mode 0600; an existing file is never overwritten).
        #[arg(long)]
        to: PathBuf,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Replace the shore database with a backup; the shore must be stopped.
    Restore {
        /// The backup file to restore.
        #[arg(long)]
        from: PathBuf,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Manage registered vessels.
    Vessel {
        #[command(subcommand)]
        command: VesselCommand,
    },
    /// Manage shore users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage organizations (each sees only its own vessels).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Add an organization, or rename one.
    Add {
        /// The organization's id (a-z, 0-9, '-', '_').
        #[arg(long)]
        id: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// List organizations.
    List {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum VesselCommand {
    /// Register a vessel, or rotate the key of a registered one.
    Add {
        /// The vessel's id, as set with `keelson-edge init`.
        #[arg(long)]
        id: String,
        /// The vessel's name.
        #[arg(long)]
        name: String,
        /// The vessel's Ed25519 public key (base64), printed by `keelson-edge init`.
        #[arg(long)]
        public_key: String,
        /// The organization the vessel belongs to.
        #[arg(long, default_value = keelson_store::DEFAULT_ORG)]
        org: String,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// List registered vessels.
    List {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user or change a user's password and role; the password is read from standard input.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Role: viewer, superintendent or fleet_admin.
        #[arg(long)]
        role: ShoreRole,
        /// The organization whose vessels the user sees.
        #[arg(long, default_value = keelson_store::DEFAULT_ORG)]
        org: String,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
}

fn load(path: &Path) -> Result<ShoreConfig> {
    ShoreConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn open(path: &Path) -> Result<ShoreState> {
    let config = load(path)?;
    ShoreState::open(config).context("opening the shore database")
}

fn main() -> std::process::ExitCode {
    keelson_config::cli::finish(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::CheckConfig { config } => {
            load(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Run { config } => {
            keelson_config::cli::init_tracing("info");
            let state = open(&config)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(async move {
                let listen = state.config.http.listen;
                let https = state.config.http.tls_files().is_some();
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                tracing::info!(%listen, https, "shore listening");
                let cancel = CancellationToken::new();
                let stop = cancel.clone();
                tokio::spawn(async move {
                    keelson_shore::shutdown_signal().await;
                    stop.cancel();
                });
                keelson_shore::serve(state, listener, cancel)
                    .await
                    .context("serving HTTP")
            })
        }
        Command::Backup { to, config } => {
            let config = load(&config)?;
            let report = keelson_store::backup::backup(&config.storage.data_dir, &to)?;
            println!("{report}");
            Ok(())
        }
        Command::Restore { from, config } => {
            let config = load(&config)?;
            let report = keelson_store::backup::restore(
                &config.storage.data_dir,
                keelson_store::Site::Shore,
                &from,
            )?;
            println!("{report}");
            Ok(())
        }
        Command::Vessel { command } => match command {
            VesselCommand::Add {
                id,
                name,
                public_key,
                org,
                config,
            } => {
                let state = open(&config)?;
                keelson_shore::add_vessel(&state.db, &id, &name, &public_key, &org)
                    .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
                println!("vessel {id} registered");
                Ok(())
            }
            VesselCommand::List { config } => {
                let state = open(&config)?;
                for v in state.db.vessels(None)? {
                    println!("{}\t{}\t{}", v.id, v.name, v.public_key);
                }
                Ok(())
            }
        },
        Command::Org { command } => match command {
            OrgCommand::Add { id, name, config } => {
                let state = open(&config)?;
                keelson_shore::add_org(&state.db, &id, &name)
                    .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
                println!("organization {id} saved");
                Ok(())
            }
            OrgCommand::List { config } => {
                let state = open(&config)?;
                for o in state.db.orgs()? {
                    println!("{}\t{}", o.id, o.name);
                }
                Ok(())
            }
        },
        Command::User { command } => match command {
            UserCommand::Add {
                username,
                role,
                org,
                config,
            } => {
                let state = open(&config)?;
                let pw = keelson_config::cli::read_password("keelson-shore")
                    .map_err(anyhow::Error::msg)?;
                keelson_shore::add_user(&state.db, &username, role, &pw, &org)
                    .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
                println!("user {username} ({role}) saved");
                Ok(())
            }
        },
    }
}
