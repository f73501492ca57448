//! `keelson-edge`: parses the command line and calls the library.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use keelson_edge::demo::{self, DemoOptions};
use keelson_edge::{DEFAULT_CONFIG, EdgeConfig};
use keelson_model::Role;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

const DEFAULT_PATH: &str = "/etc/keelson/edge.toml";

/// Keelson edge agent: sensor ingest, maintenance records and shore sync on board.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge agent.
    Run {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Run a whole demo on this machine: simulated engine room, ship UI on :8080, shore on :8090.
    Demo {
        /// Where the demo keeps its data (created when missing).
        #[arg(long, default_value = "keelson-demo")]
        data_dir: PathBuf,
        /// Port of the ship UI.
        #[arg(long, default_value_t = 8080)]
        ship_port: u16,
        /// Port of the shore UI.
        #[arg(long, default_value_t = 8090)]
        shore_port: u16,
        /// Seconds between sync attempts.
        #[arg(long, default_value_t = 15)]
        sync_interval: u64,
    },
    /// Set this vessel up: write the configuration and create the vessel key.
    Init {
        /// The vessel's id, as it will be registered at the shore (a-z, 0-9, '-', '_').
        #[arg(long)]
        vessel_id: String,
        /// The vessel's name.
        #[arg(long)]
        name: String,
        /// The shore's base URL, e.g. https://shore.example.com.
        #[arg(long)]
        shore_url: String,
        /// Configuration file to write.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
        /// Where the private key goes (created with mode 0600, never overwritten).
        #[arg(long, default_value = "/etc/keelson/vessel.key")]
        key_file: PathBuf,
        /// Replace an existing configuration file (the key is never replaced).
        #[arg(long)]
        force: bool,
    },
    /// Print the vessel's public key, creating the key file when it is missing
    /// (mode 0600, never replacing an existing key).
    Key {
        /// The vessel's private key file.
        #[arg(long, default_value = "/etc/keelson/vessel.key")]
        key_file: PathBuf,
    },
    /// Write simulated sensor data through the real write and compaction path, in
    /// simulated time, and report disk use and bytes per sample.
    Simulate {
        /// Simulated days.
        #[arg(long, default_value_t = 45)]
        days: u32,
        /// Tags, each sampled at 1 Hz.
        #[arg(long, default_value_t = 2000)]
        tags: u32,
        /// Where the simulated vessel database goes (created when missing).
        #[arg(long)]
        data_dir: PathBuf,
        /// Simulated hours instead of whole days.
        #[arg(long)]
        hours: Option<u32>,
        /// Disk budget in bytes (default: no limit).
        #[arg(long)]
        budget_bytes: Option<u64>,
    },
    /// Print the default configuration.
    PrintDefaultConfig,
    /// Check a configuration file and report the first error.
    CheckConfig {
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Copy the vessel database to FILE while the agent keeps running.
    Backup {
        /// The backup file to write (mode 0600; an existing file is never overwritten).
        #[arg(long)]
        to: PathBuf,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Replace the vessel database with a backup; the agent must be stopped.
    Restore {
        /// The backup file to restore.
        #[arg(long)]
        from: PathBuf,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Manage users on board.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user or change a user's password and role; the password is read from standard input.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Role: crew, engineer, chief_engineer or master.
        #[arg(long)]
        role: Role,
        /// Configuration file.
        #[arg(long, default_value = DEFAULT_PATH)]
        config: PathBuf,
    },
}

fn load(path: &Path) -> Result<EdgeConfig> {
    EdgeConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
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
            let config = load(&config)?;
            runtime()?.block_on(async move {
                let cancel = CancellationToken::new();
                let edge = keelson_edge::start(config, cancel.clone()).await?;
                keelson_shore::shutdown_signal().await;
                tracing::info!("stopping");
                cancel.cancel();
                edge.join().await;
                Ok(())
            })
        }
        Command::Demo {
            data_dir,
            ship_port,
            shore_port,
            sync_interval,
        } => {
            keelson_config::cli::init_tracing("warn");
            runtime()?.block_on(demo::run(DemoOptions {
                data_dir,
                ship_port,
                shore_port,
                sync_interval_secs: sync_interval.max(1),
            }))
        }
        Command::Simulate {
            days,
            tags,
            data_dir,
            hours,
            budget_bytes,
        } => {
            keelson_config::cli::init_tracing("warn");
            let mut opts = keelson_edge::simulate::SimulateOptions::new(days, tags, data_dir);
            if let Some(hours) = hours {
                opts.hours = hours;
            }
            if let Some(budget) = budget_bytes {
                opts.retention.budget_bytes = budget;
            }
            let every = (i64::from(opts.hours) / 20).max(1);
            let r = keelson_edge::simulate::simulate(&opts, |hours, r| {
                if hours % every == 0 {
                    eprintln!(
                        "{:.1} simulated days, {} samples, {:.0} s",
                        hours as f64 / 24.0,
                        r.samples,
                        r.elapsed.as_secs_f64()
                    );
                }
            })?;
            let u = &r.usage;
            println!(
                "simulated {} hours x {tags} tags: {} samples written, {} stored, in {:.1} s \
                 (writing {:.1} s, compaction and retention {:.1} s)",
                opts.hours,
                r.samples,
                r.stored,
                r.elapsed.as_secs_f64(),
                r.write_time.as_secs_f64(),
                r.compaction_time.as_secs_f64()
            );
            println!(
                "disk: used {} bytes (file {}): rows {}, raw blocks {}, 1-minute rollups {}, \
                 hourly rollups {}, other {}",
                u.used_bytes,
                u.file_bytes,
                u.rows_bytes,
                u.raw_block_bytes,
                u.minute_bytes,
                u.hour_bytes,
                u.other_bytes
            );
            println!(
                "bytes_per_sample={:.3} block_bytes_per_sample={:.3} compaction_per_s={:.0}",
                r.bytes_per_sample(),
                r.block_bytes_per_sample(),
                r.compaction_per_s()
            );
            Ok(())
        }
        Command::Init {
            vessel_id,
            name,
            shore_url,
            config,
            key_file,
            force,
        } => {
            let text = keelson_edge::config::init_config(&vessel_id, &name, &shore_url, &key_file)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if config.exists() && !force {
                bail!("{} exists; pass --force to replace it", config.display());
            }
            if let Some(dir) = config.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&config, text)
                .with_context(|| format!("writing {}", config.display()))?;
            let (key, created) = keelson_edge::keys::load_or_create(&key_file)?;
            println!("configuration written to {}", config.display());
            println!(
                "vessel key {} {}",
                if created { "created at" } else { "kept at" },
                key_file.display()
            );
            println!("public key: {}", key.public_key_b64());
            println!();
            println!("Register the vessel at the shore with:");
            println!(
                "  keelson-shore vessel add --id {vessel_id} --name '{name}' --public-key {}",
                key.public_key_b64()
            );
            Ok(())
        }
        Command::Key { key_file } => {
            let (key, created) = keelson_edge::keys::load_or_create(&key_file)?;
            println!(
                "vessel key {} {}",
                if created { "created at" } else { "kept at" },
                key_file.display()
            );
            println!("public key: {}", key.public_key_b64());
            Ok(())
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
                keelson_store::Site::Edge,
                &from,
            )?;
            println!("{report}");
            Ok(())
        }
        Command::User { command } => match command {
            UserCommand::Add {
                username,
                role,
                config,
            } => {
                let config = load(&config)?;
                std::fs::create_dir_all(&config.storage.data_dir)
                    .with_context(|| format!("creating {}", config.storage.data_dir.display()))?;
                let db =
                    keelson_store::Db::open(&config.storage.data_dir, keelson_store::Site::Edge)
                        .context("opening the vessel database")?;
                let pw = keelson_config::cli::read_password("keelson-edge")
                    .map_err(anyhow::Error::msg)?;
                keelson_edge::add_user(&db, &username, role, &pw)
                    .map_err(|e| anyhow::anyhow!("{}", e.public_detail()))?;
                println!("user {username} ({role}) saved");
                Ok(())
            }
        },
    }
}
