//! Counts that must be checked, not trusted (issue 21, item 5): a `_bulk` answer carries one
//! item per action sent; server mode's task counts add up before `TaskCountsOnly` says anything;
//! a server-mode task is adopted only when it is this copy's.

use crate::harness::fake_http;
use bytes::Bytes;
use remote_reindex::search::{ClientOptions, SearchClient};
use tokio::io::BufReader;

/// An in-process destination that answers every `_bulk` with `answer` (200): a real server
/// always sends one item per action, so only a fake can answer `{}` or fewer items.
async fn bulk_fake_server(answer: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut s = BufReader::new(s);
                while let Some(_req) = fake_http::read(&mut s).await {
                    fake_http::respond(&mut s, 200, answer.as_bytes()).await;
                }
            });
        }
    });
    url
}

fn three_actions() -> Bytes {
    let mut body = String::new();
    for i in 0..3 {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"d\",\"_id\":\"d{i}\"}}}}\n{{\"n\":{i}}}\n"
        ));
    }
    Bytes::from(body)
}

const ONE_ITEM: &str = r#"{"index":{"_index":"d","_id":"d0","status":201,"result":"created"}}"#;

/// A 200 whose body lacks the items (or has fewer than the actions sent) is an error, never
/// "all accepted"; an answer with exactly one item per action is accepted.
#[tokio::test]
async fn bulk_answer_without_one_item_per_action_is_an_error_fake_server() {
    let short_ok: &'static str =
        Box::leak(format!(r#"{{"took":1,"errors":false,"items":[{ONE_ITEM}]}}"#).into_boxed_str());
    let short_err: &'static str = Box::leak(
        format!(
            r#"{{"took":1,"errors":true,"items":[{{"index":{{"_id":"d0","status":400,"error":{{"type":"mapper_parsing_exception","reason":"x"}}}}}}]}}"#
        )
        .into_boxed_str(),
    );
    let mut accepted = Vec::new();
    for answer in [
        "{}",
        r#"{"took":1,"errors":false}"#,
        r#"{"took":1,"errors":false,"items":[]}"#,
        short_ok,
        short_err,
    ] {
        let url = bulk_fake_server(answer).await;
        let client = SearchClient::new(ClientOptions::new(url)).unwrap();
        match client.bulk(three_actions(), 3, None).await {
            Ok(o) => accepted.push(format!(
                "{answer} -> accepted: {} items, {} failures",
                o.items,
                o.failures.len()
            )),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("3 sent") || text.contains("3 actions"),
                    "{answer}: the error does not say what was wrong: {text}"
                );
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "answers without one item per action were taken as written:\n{}",
        accepted.join("\n")
    );
    let full: &'static str = Box::leak(
        format!(r#"{{"took":1,"errors":false,"items":[{ONE_ITEM},{ONE_ITEM},{ONE_ITEM}]}}"#)
            .into_boxed_str(),
    );
    let client = SearchClient::new(ClientOptions::new(bulk_fake_server(full).await)).unwrap();
    let o = client.bulk(three_actions(), 3, None).await.unwrap();
    assert_eq!((o.items, o.failures.len()), (3, 0));
}
