//! `kopilka`: one binary for the server, the worker and the operator's commands.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use kopilka_server::{AppState, Config, services};
use kopilka_store::Db;
use std::io::IsTerminal;

mod bench;

/// mimalloc instead of glibc's malloc. In the server's profile the SQLite lane's thread,
/// which shares a CPU with sqlx's writer thread (`store::affinity`), spent much of its
/// time in glibc's `malloc` and `free`. Measured in docs/benchmarks-history.md ("Issue 5, sixth pass"):
/// about 9 % more checkouts a second on SQLite, for about 30 MB more RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_DB: &str = "sqlite:./kopilka-data/kopilka.db";

#[derive(Parser)]
#[command(name = "kopilka", version, about = "Kopilka: an open-source loyalty platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArg {
    /// sqlite:PATH or postgres://...
    #[arg(long, env = "KOPILKA_DATABASE_URL", default_value = DEFAULT_DB)]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and the background worker, unless --no-worker).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        db: DbArg,
        /// Do not run the background worker in this process.
        #[arg(long)]
        no_worker: bool,
        /// Group commit: at most this many checkouts, reserves and refunds share one
        /// transaction (1 turns group commit off).
        #[arg(long, env = "KOPILKA_BATCH_MAX", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
        batch_max: u16,
        /// Group commit on PostgreSQL: write lanes (transactions in flight at once).
        /// SQLite always has one.
        #[arg(long, env = "KOPILKA_WRITE_LANES", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        write_lanes: u16,
        /// Group commit: check out every receipt of a batch the per-receipt way instead of
        /// set-wise (for comparison; see docs/benchmarks-history.md, "Issue 5, second pass").
        #[arg(long, env = "KOPILKA_NO_SET_BASED")]
        no_set_based: bool,
        /// Group commit on SQLite: let the writing lane run anywhere, instead of on its own
        /// thread on the CPU of the writer connection's thread (see docs/operations.md).
        #[arg(long, env = "KOPILKA_NO_PIN_SQLITE_LANE")]
        no_pin_sqlite_lane: bool,
    },
    /// Run the background worker alone.
    Worker {
        #[command(flatten)]
        db: DbArg,
        /// Run every due job once and exit.
        #[arg(long)]
        once: bool,
    },
    /// Apply the database migrations.
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Create the demo tenant (if missing) and print its URLs and fresh keys.
    Demo {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value_t = 300)]
        members: usize,
        #[arg(long, default_value_t = 3000)]
        receipts: usize,
        /// The address `serve` listens on, for the printed URLs.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Import data from an earlier programme.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Wallet cards: development certificates.
    Cards {
        #[command(subcommand)]
        command: CardsCommand,
    },
    /// Measure the till: start the server on a database, load members, and drive
    /// checkouts over HTTP from many clients (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Staff accounts of the admin console.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Rebuild every balance from the ledger and compare with the stored balances.
    Check {
        #[command(flatten)]
        db: DbArg,
        /// Only this tenant (slug).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with its programme and an admin key.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long, default_value = "retail")]
        template: String,
        #[command(flatten)]
        db: DbArg,
        /// Print one line of JSON.
        #[arg(long)]
        json: bool,
        /// Also create the admin console's owner account with this email, and print a
        /// one-time login link (24 hours) with which the owner sets a password.
        #[arg(long)]
        owner_email: Option<String>,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Print a one-time login link (24 hours) for a staff account, creating the account
    /// (as owner, unless --role says otherwise) if the email has none: a lost password,
    /// or a further owner.
    LoginLink {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, marketer, cashier or analyst (for a new account).
        #[arg(long, default_value = "owner")]
        role: String,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum CardsCommand {
    /// Create a self-signed pass certificate for development and tests: a stand-in WWDR
    /// intermediate, a Pass Type ID certificate it issued, and the key. Wallet on a phone
    /// does not accept it; `openssl smime -verify -noverify` does.
    DevCert {
        #[arg(long, default_value = "pass.dev.kopilka")]
        pass_type_id: String,
        #[arg(long, default_value = "DEVTEAM000")]
        team_id: String,
        /// Directory for pass-cert.pem, pass-key.pem (mode 0600) and wwdr.pem.
        #[arg(long, default_value = "./kopilka-data/pass-dev")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Members from a CSV file (all-or-nothing; rejected rows are listed).
    Members {
        file: std::path::PathBuf,
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        db: DbArg,
    },
}

async fn open(db: &DbArg) -> Result<Db> {
    let db = Db::connect(&db.database_url).await.with_context(|| "cannot open the database")?;
    kopilka_store::migrate::run(&db).await.context("migrations failed")?;
    Ok(db)
}

pub(crate) fn api_error(e: kopilka_server::error::ApiError) -> anyhow::Error {
    let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if fields.is_empty() {
        anyhow::anyhow!("{} ({})", e.message, e.code)
    } else {
        anyhow::anyhow!("{} ({}): {}", e.message, e.code, fields.join("; "))
    }
}

/// On an empty database, make the first-run setup code (unless KOPILKA_SETUP_TOKEN gave
/// one) and tell the operator where to use it. With tenants present the page is closed.
async fn first_run_notice(state: &AppState, web: &mut kopilka_web::WebConfig) -> Result<()> {
    let empty = {
        let mut c = state.db.pool().acquire().await?;
        !kopilka_store::web::any_tenant(&mut c).await?
    };
    if !empty {
        return Ok(());
    }
    let code = match &web.setup_token {
        Some(_) => "set in KOPILKA_SETUP_TOKEN".to_owned(),
        None => web.setup_token.insert(kopilka_web::session::random_token()[..20].to_owned()).clone(),
    };
    eprintln!(
        "\nNo programme yet. Open {}/admin/setup and enter the setup code ({code}),\nor run: kopilka tenant create --name NAME --owner-email EMAIL\n",
        web.public_url
    );
    Ok(())
}

fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // The benchmark prints its own progress; sqlx's slow-statement warnings (a DROP
    // DATABASE waits for a checkpoint) would only interleave with it.
    let default_filter = if matches!(cli.command, Command::Bench(_)) { "warn,sqlx=error" } else { "info,sqlx=warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KOPILKA_LOG").unwrap_or_else(|_| default_filter.into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { listen, db, no_worker, batch_max, write_lanes, no_set_based, no_pin_sqlite_lane } => {
            let db = open(&db).await?;
            let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            let cards = std::sync::Arc::new(services::cards::CardsConfig::from_env()?);
            let mut web = kopilka_web::WebConfig::from_env(&cards.public_url);
            let group = services::group_commit::GroupConfig {
                max_batch: batch_max.into(),
                pg_lanes: write_lanes.into(),
                set_based: !no_set_based,
                pin_sqlite_lane: !no_pin_sqlite_lane,
            };
            let config = Config { worker: !no_worker, cards, group, ..Config::default() };
            let state = AppState::new(db, config, kopilka_server::metrics_handle());
            first_run_notice(&state, &mut web).await?;
            tracing::info!(address = %listener.local_addr()?, "Kopilka is listening");
            let pages = kopilka_web::router(state.clone(), web);
            kopilka_server::serve_with(listener, state, pages, shutdown_signal()).await?;
        }
        Command::Worker { db, once } => {
            let db = open(&db).await?;
            let cards = std::sync::Arc::new(services::cards::CardsConfig::from_env()?);
            let state = AppState::new(db, Config { cards, ..Config::default() }, kopilka_server::metrics_handle());
            if once {
                let n = kopilka_server::jobs::drain(&state).await?;
                println!("ran {n} jobs");
            } else {
                kopilka_server::jobs::run(state, shutdown_signal()).await;
            }
        }
        Command::Cards { command: CardsCommand::DevCert { pass_type_id, team_id, out } } => {
            let chain = kopilka_cards::sign::dev_chain(&pass_type_id, &team_id).map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let write = |name: &str, text: &str, private: bool| -> Result<std::path::PathBuf> {
                let path = out.join(name);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                if private {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let _ = private;
                use std::io::Write;
                opts.open(&path)
                    .and_then(|mut f| f.write_all(text.as_bytes()))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(path)
            };
            let cert = write("pass-cert.pem", &chain.cert_pem, false)?;
            let key = write("pass-key.pem", &chain.key_pem, true)?;
            let wwdr = write("wwdr.pem", &chain.wwdr_pem, false)?;
            println!("KOPILKA_PASS_CERT={}\nKOPILKA_PASS_KEY={}\nKOPILKA_PASS_WWDR={}", cert.display(), key.display(), wwdr.display());
        }
        Command::Migrate { db } => {
            let db = open(&db).await?;
            println!("database is at migration {}", kopilka_store::migrate::current_version(&db).await?);
        }
        Command::Tenant { command: TenantCommand::Create { name, slug, template, db, json, owner_email } } => {
            let owner = match owner_email.as_deref() {
                Some(e) => {
                    Some(kopilka_web::staff::normalize_email(e).with_context(|| format!("--owner-email: {e} is not an email address"))?)
                }
                None => None,
            };
            let db = open(&db).await?;
            let program = services::templates::template(&template)
                .ok_or_else(|| anyhow::anyhow!("--template must be one of {}", services::templates::NAMES.join(", ")))?;
            let new = services::accounts::NewTenant {
                name: &name,
                slug: slug.as_deref(),
                template: &template,
                program,
                admin_key: true,
                owner: owner.map(|email| services::accounts::NewOwner { email, password_hash: None }),
                actor: "cli",
            };
            let t = services::accounts::create_tenant_with(&db, new).await.map_err(api_error)?;
            let api_key = t.api_key.unwrap_or_default();
            let login_url = match &t.owner_id {
                Some(owner) => {
                    let public_url = services::cards::CardsConfig::from_env()?.public_url;
                    Some(kopilka_web::staff::create_login_link(&db, &public_url, &t.tenant_id, owner).await.map_err(api_error)?)
                }
                None => None,
            };
            if json {
                let mut out = serde_json::json!({"tenant_id": t.tenant_id, "slug": t.slug, "api_key": api_key});
                if let Some(u) = &login_url {
                    out["login_url"] = serde_json::Value::String(u.clone());
                }
                println!("{out}");
            } else {
                println!("tenant:  {} (slug {})\nadmin key (shown once): {api_key}", t.tenant_id, t.slug);
                if let Some(u) = &login_url {
                    println!("owner's one-time login link (24 hours): {u}");
                }
            }
        }
        Command::Staff { command: StaffCommand::LoginLink { tenant, email, role, db } } => {
            let email = kopilka_web::staff::normalize_email(&email).with_context(|| format!("{email} is not an email address"))?;
            let role = kopilka_web::staff::StaffRole::parse(&role).context("--role must be owner, marketer, cashier or analyst")?;
            let db = open(&db).await?;
            let t = {
                let mut c = db.pool().acquire().await?;
                kopilka_store::tenants::tenant_by_slug(&mut c, &tenant).await?
            };
            let Some(t) = t else { bail!("no tenant with slug {tenant}") };
            let existing = {
                let mut c = db.pool().acquire().await?;
                kopilka_store::web::staff_by_email_any_tenant(&mut c, &email, 100).await?.into_iter().find(|u| u.tenant_id == t.id)
            };
            let user = match existing {
                Some(u) if u.disabled_at.is_some() => bail!("the account of {email} is disabled; enable it in the console first"),
                Some(u) => u,
                None => kopilka_web::staff::create_staff(&db, &t.id, "cli", &email, role).await.map_err(api_error)?,
            };
            let public_url = services::cards::CardsConfig::from_env()?.public_url;
            let url = kopilka_web::staff::create_login_link(&db, &public_url, &t.id, &user.id).await.map_err(api_error)?;
            println!("one-time login link for {} ({}), valid 24 hours: {url}", user.email, user.role);
        }
        Command::Demo { db, members, receipts, listen } => {
            let db = open(&db).await?;
            let state = AppState::new(db, Config::default(), None);
            eprintln!("preparing the demo tenant (a year of receipts the first time; this takes a little while)...");
            let d = services::demo::run(&state, members, receipts).await.map_err(api_error)?;
            if d.created {
                println!("created the demo tenant: {} members, {} receipts, {} refunds", d.members, d.receipts, d.refunds);
            } else {
                println!("the demo tenant already exists");
            }
            println!("API:       http://{listen}/api/v1  (start it with: kopilka serve --listen {listen})");
            println!("OpenAPI:   http://{listen}/api/v1/openapi.json");
            println!("tenant:    {} (slug {})", d.tenant_id, services::demo::SLUG);
            println!("admin key: {}", d.admin_key);
            println!("pos key:   {}  (store MSK-1, till T1)", d.pos_key);
            // The web console: the demo owner's account, and a fresh one-time login link.
            let email = "owner@demo.kopilka.test";
            let owner = {
                let mut c = state.db.pool().acquire().await?;
                kopilka_store::web::staff_by_email_any_tenant(&mut c, email, 100).await?.into_iter().find(|u| u.tenant_id == d.tenant_id)
            };
            let owner = match owner {
                Some(u) => u,
                None => kopilka_web::staff::create_staff(&state.db, &d.tenant_id, "cli", email, kopilka_web::staff::StaffRole::Owner)
                    .await
                    .map_err(api_error)?,
            };
            let base =
                std::env::var("KOPILKA_PUBLIC_URL").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| format!("http://{listen}"));
            let link = kopilka_web::staff::create_login_link(&state.db, &base, &d.tenant_id, &owner.id).await.map_err(api_error)?;
            println!("console:   {link}  (one-time login link of {email}, 24 hours)");
        }
        Command::Import { command: ImportCommand::Members { file, tenant, db } } => {
            let data = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let db = open(&db).await?;
            let t = {
                let mut c = db.pool().acquire().await?;
                kopilka_store::tenants::tenant_by_slug(&mut c, &tenant).await?
            };
            let Some(t) = t else { bail!("no tenant with slug {tenant}") };
            let bar = indicatif::ProgressBar::new(0);
            if !std::io::stderr().is_terminal() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("template"));
            let progress = |done: usize, total: usize| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            };
            let report = services::import::import_csv(&db, &t.id, "cli", &data, Some(&progress)).await.map_err(api_error)?;
            bar.finish_and_clear();
            if report.rejected.is_empty() {
                println!("imported {} members with {} points", report.imported, report.points_imported);
            } else {
                for r in &report.rejected {
                    println!("row {}: {}", r.row, r.reason);
                }
                bail!("{} of {} rows rejected; nothing was imported", report.rejected.len(), report.rows);
            }
        }
        Command::Bench(args) => {
            let exe = std::env::current_exe().context("cannot find this binary")?;
            bench::run(exe, args).await?;
        }
        Command::Check { db, tenant } => {
            let db = open(&db).await?;
            let mut c = db.pool().acquire().await?;
            let ids = match tenant {
                Some(slug) => {
                    vec![kopilka_store::tenants::tenant_by_slug(&mut c, &slug).await?.with_context(|| format!("no tenant {slug}"))?.id]
                }
                None => kopilka_store::tenants::all_tenant_ids(&mut c).await?,
            };
            let mut bad = 0;
            let mut checked = 0;
            for id in ids {
                let r = services::check::tenant(&mut c, &id).await?;
                checked += r.members_checked;
                for d in &r.differences {
                    println!("tenant {} member {}: {} stored {} rebuilt {}", d.tenant_id, d.member_id, d.what, d.stored, d.rebuilt);
                }
                bad += r.differences.len();
            }
            println!("checked {checked} members: {bad} differences");
            if bad > 0 {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
