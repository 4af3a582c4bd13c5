//! The actix-web front end of a `TestApp`: an actix-web app on a thread of
//! its own, fed requests through a channel.
//!
//! actix-web services are not `Send`, while the checks run on a
//! multi-threaded runtime and send requests from many tasks at once. So the
//! app lives on one thread with a single-threaded runtime, serves each
//! request on a local task (so concurrent requests really overlap), and
//! answers through a oneshot channel.

use std::rc::Rc;

use actix_web::dev::Service as _;
use actix_web::{App, HttpRequest, HttpResponse, web};
use tokio::sync::{mpsc, oneshot};

use super::reply::{Handler, TestReply};
use crate::{Session, SessionLayer};

/// One request: the cookie to send, the handler's index, and where the
/// reply goes.
struct Job {
    cookie: Option<String>,
    index: usize,
    reply: oneshot::Sender<TestReply>,
}

/// A running actix-web app; it stops once its last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct ActixApp {
    jobs: mpsc::UnboundedSender<Job>,
}

impl ActixApp {
    /// Starts the app: `layer` wrapped around one route running `handler`.
    pub(super) fn start(layer: SessionLayer, handler: Handler) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("actix-test-app".into())
            .spawn(move || serve(layer, handler, queue))
            .expect("spawning the actix-web test thread");
        ActixApp { jobs }
    }

    /// One request through the app.
    pub(super) async fn send(&self, cookie: Option<&str>, index: usize) -> TestReply {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            cookie: cookie.map(str::to_owned),
            index,
            reply,
        };
        self.jobs
            .send(job)
            .unwrap_or_else(|_| panic!("the actix-web test app stopped"));
        answer
            .await
            .expect("the actix-web test app dropped a request")
    }
}

fn serve(layer: SessionLayer, handler: Handler, mut queue: mpsc::UnboundedReceiver<Job>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the actix-web test app");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let route = move |req: HttpRequest, session: Session| {
            let handler = handler.clone();
            async move {
                let index = req.path().trim_start_matches('/').parse().unwrap_or(0);
                match handler(session, index).await {
                    Ok(body) => HttpResponse::Ok().body(body),
                    Err(e) => {
                        HttpResponse::build(crate::actix::status(e.status())).body(e.to_string())
                    }
                }
            }
        };
        let app =
            actix_web::test::init_service(App::new().wrap(layer).default_service(web::to(route)))
                .await;
        let app = Rc::new(app);
        while let Some(job) = queue.recv().await {
            let app = Rc::clone(&app);
            tokio::task::spawn_local(async move {
                let mut req = actix_web::test::TestRequest::get().uri(&format!("/{}", job.index));
                if let Some(cookie) = &job.cookie {
                    req = req.insert_header(("cookie", cookie.as_str()));
                }
                let reply = match app.call(req.to_request()).await {
                    Ok(res) => reply_of(res).await,
                    Err(e) => {
                        TestReply::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), None)
                    }
                };
                let _ = job.reply.send(reply);
            });
        }
    });
}

async fn reply_of<B: actix_web::body::MessageBody>(
    res: actix_web::dev::ServiceResponse<B>,
) -> TestReply {
    let status = http::StatusCode::from_u16(res.status().as_u16())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let set_cookie = res
        .headers()
        .get(actix_web::http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = actix_web::body::to_bytes(res.into_body())
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|_| "<unreadable body>".to_owned());
    TestReply::new(status, body, set_cookie)
}
