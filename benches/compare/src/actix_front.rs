//! What the two actix-web binaries (`actix-ours` on session-core's `actix`
//! feature, `actix-theirs` on actix-session) share: the server's life, the
//! pre-filling, the session selector and `GET /bench/total`.
//!
//! An actix-web app cannot be passed around as a value the way an axum
//! `Router` can, so each binary builds its own `HttpServer` in the closure
//! it gives [`main_with`], wrapping its session middleware inside
//! [`select`] and adding [`admin`]; everything else happens here, over
//! real HTTP to the running server.

use std::future::Future;

use actix_web::dev::{Server, ServiceRequest};
use actix_web::{HttpResponse, Resource, web};

use crate::{
    Mode, Sessions, StoreKind, Tally, args_or_exit, http, prefill, probe_port, ready_line,
    selected_cookie,
};

/// Gives `req` the cookie of the pre-filled session its `?u=` names, as
/// [`selector`](crate::selector) does for the axum apps.
pub fn select(sessions: &Sessions, req: &mut ServiceRequest) {
    let cookie = selected_cookie(sessions, req.query_string().into())
        .and_then(|c| actix_web::http::header::HeaderValue::from_bytes(c.as_bytes()).ok());
    if let Some(cookie) = cookie {
        req.headers_mut()
            .insert(actix_web::http::header::COOKIE, cookie);
    }
}

#[derive(Clone)]
struct Admin {
    port: u16,
    sessions: Sessions,
}

/// `GET /bench/total` (see [`Tally`]), reading every pre-filled cart back
/// through the server on `port`.
pub fn admin(port: u16, sessions: Sessions) -> Resource {
    web::resource("/bench/total")
        .app_data(web::Data::new(Admin { port, sessions }))
        .route(web::get().to(total))
}

async fn total(admin: web::Data<Admin>) -> HttpResponse {
    let cookies = admin.sessions.get().cloned().unwrap_or_default();
    let mut tally = Tally::default();
    for cookie in &cookies {
        let cookie = cookie.to_str().ok();
        match http(admin.port, "GET", "/cart", cookie).await {
            Ok((status, _, body)) => tally.add((200..300).contains(&status), &body),
            Err(_) => tally.add(false, b""),
        }
    }
    HttpResponse::Ok().json(tally.json())
}

/// The entry point of both actix-web binaries: `start` builds the store,
/// then the server on the listener it is given (with [`select`] outermost
/// and [`admin`] among its services) and returns it unstarted.
pub fn main_with<F, Fut>(implementation: &'static str, start: F)
where
    F: FnOnce(StoreKind, std::net::TcpListener, Sessions) -> Fut,
    Fut: Future<Output = Server>,
{
    let args = args_or_exit();
    actix_web::rt::System::new().block_on(async move {
        let port = match args.mode {
            Mode::Serve { port, .. } => port,
            Mode::Probe { .. } => 0,
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        let port = listener.local_addr().expect("address").port();
        let sessions = Sessions::default();
        let server = start(args.store, listener, sessions.clone()).await;
        let handle = server.handle();
        let running = actix_web::rt::spawn(server);
        match args.mode {
            Mode::Serve {
                sessions: count, ..
            } => {
                seed(implementation, args.store, port, &sessions, count).await;
                let _ = running.await;
            }
            Mode::Probe { adds } => {
                probe_port(implementation, args.store, port, adds).await;
                handle.stop(false).await;
            }
        }
    });
}

/// Pre-fills `count` sessions through the server, as clients would, then
/// prints the `READY` line.
async fn seed(
    implementation: &str,
    store: StoreKind,
    port: u16,
    sessions: &Sessions,
    count: usize,
) {
    let filled = prefill(
        sessions,
        count,
        || async {
            let (status, cookie, _) = http(port, "POST", "/cart/seed", None)
                .await
                .expect("seeding request");
            (status, cookie)
        },
        || async {
            let (status, _, body) = http(port, "GET", "/cart?u=0", None)
                .await
                .expect("read-back request");
            (status, body)
        },
    )
    .await;
    println!(
        "{}",
        ready_line(implementation, store, port, count, &filled)
    );
}

/// The body of a cart as an actix-web JSON response.
pub fn cart_http(cart: &[crate::Line]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::cart_json(cart))
}

/// The cart app's server for [`main_with`]: on `listener`, two workers, each
/// an `App` with the routes `GET /cart` (`$get`), `POST /cart/items`
/// (`$add`), `POST /cart/seed` (`$seed`) and [`admin`], wrapped in the
/// session middleware `$middleware` (an expression evaluated once per
/// worker) and, outside it, [`select`]. A macro because actix-web's app
/// types cannot be named in a function's signature.
#[macro_export]
macro_rules! actix_server {
    ($listener:expr, $sessions:expr, $middleware:expr, $get:expr, $add:expr, $seed:expr) => {{
        use ::actix_web::dev::Service as _;
        let listener: ::std::net::TcpListener = $listener;
        let sessions: $crate::Sessions = $sessions;
        let port = listener.local_addr().expect("address").port();
        ::actix_web::HttpServer::new(move || {
            let selecting = sessions.clone();
            ::actix_web::App::new()
                .service($crate::actix_front::admin(port, sessions.clone()))
                .route("/cart", ::actix_web::web::get().to($get))
                .route("/cart/items", ::actix_web::web::post().to($add))
                .route("/cart/seed", ::actix_web::web::post().to($seed))
                .wrap($middleware)
                .wrap_fn(move |mut req, srv| {
                    $crate::actix_front::select(&selecting, &mut req);
                    srv.call(req)
                })
        })
        .workers(2)
        .listen(listener)
        .expect("listen")
        .run()
    }};
}
