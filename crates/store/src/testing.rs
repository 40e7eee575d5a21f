//! Databases for tests: each test (or test process) gets a PostgreSQL
//! database of its own, created fresh and dropped afterwards, so that no
//! run depends on what another left. The server to use is
//! `CONFSYNC_TEST_POSTGRES` (default: the local one, trust auth).

use crate::{Cipher, Result, Store};

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("CONFSYNC_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The key test stores seal with (never a real deployment's).
pub const TEST_KEY: [u8; 32] = [7; 32];

/// A fresh database, dropped (with whatever connects to it) on drop.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin = server_url();
        let name = format!(
            "confsync_test_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} (CONFSYNC_TEST_POSTGRES): {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin).expect("CONFSYNC_TEST_POSTGRES is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            name,
            admin,
        }
    }

    /// `create`, from code that is not async (a runtime of its own).
    pub fn create_blocking() -> TestDatabase {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(TestDatabase::create())
        })
        .join()
        .expect("creating a test database")
    }

    /// A store on this database, sealing with `TEST_KEY`.
    pub async fn store(&self) -> Result<Store> {
        Store::open_postgres(&self.url, Cipher::from_key(TEST_KEY)).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A runtime of its own: drop may run inside or outside one.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}
