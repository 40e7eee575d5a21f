//! A Confluence site (or whoever answers as one) cannot make the client
//! send the site's credentials elsewhere: links and redirects to another
//! origin are refused before anything is sent (issue 11, finding 2).

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use confluence::{Client, Credentials, Error, RetryPolicy, SiteUrl};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

#[tokio::test]
async fn links_and_redirects_to_other_origins_get_no_credentials() {
    // The other host records every request that reaches it.
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let other = serve(Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(
                headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or("").to_string()),
            );
            Json(json!({"results": []}))
        }
    }))
    .await;
    let to_other = other.clone();
    let site = serve(
        Router::new()
            .route(
                "/wiki/rest/api/content",
                get(move || {
                    let next = format!("{to_other}/wiki/rest/api/content?start=1");
                    async move { Json(json!({"results": [{"id": "1"}], "_links": {"next": next}})) }
                }),
            )
            .route(
                "/wiki/download/away",
                get({
                    let other = other.clone();
                    move || {
                        let other = other.clone();
                        async move {
                            (StatusCode::FOUND, [("location", format!("{other}/steal"))])
                                .into_response()
                        }
                    }
                }),
            )
            .route(
                "/wiki/download/here",
                get(|| async {
                    (StatusCode::FOUND, [("location", "/wiki/files/here")]).into_response()
                }),
            )
            .route("/wiki/files/here", get(|| async { "the file" })),
    )
    .await;
    let client = Client::new(
        SiteUrl::cloud(&site),
        Credentials::ApiToken {
            email: "me@example.com".into(),
            token: "SITE-API-TOKEN".into(),
        },
        RetryPolicy::default(),
    )
    .unwrap();
    assert!(client.on_site(&format!("{site}/wiki/anything")));
    assert!(!client.on_site(&format!("{other}/wiki/anything")));
    assert!(!client.on_site(&site.replace("http://", "https://")));

    // An absolute next link to another host is refused, not followed.
    let (items, next) = client
        .listing::<Value>(&format!("{site}/wiki/rest/api/content"))
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let next = next.unwrap();
    assert!(next.starts_with(&other));
    let refused = client.listing::<Value>(&next).await.unwrap_err();
    assert!(matches!(refused, Error::ForeignOrigin(_)), "{refused}");
    assert!(!refused.is_retryable());
    // A redirect to another host is not followed either.
    let refused = client
        .get_bytes(&format!("{site}/wiki/download/away"))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::ForeignOrigin(_)), "{refused}");
    // One on the site's own origin is.
    let body = client
        .get_bytes(&format!("{site}/wiki/download/here"))
        .await
        .unwrap();
    assert_eq!(&body[..], b"the file");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the other host was reached: {:?}",
        seen.lock().unwrap()
    );
}
