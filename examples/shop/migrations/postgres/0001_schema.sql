-- The shop's tables (PostgreSQL).
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    description TEXT NOT NULL
);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name          TEXT NOT NULL
);

CREATE TABLE addresses (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    pos      BIGINT NOT NULL,
    line     TEXT NOT NULL,
    PRIMARY KEY (user_id, pos)
);

CREATE TABLE orders (
    id            BIGSERIAL PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id),
    total_cents   BIGINT NOT NULL,
    ship_to       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX orders_by_user ON orders (user_id, id);

CREATE TABLE order_lines (
    order_id    BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    pos    BIGINT NOT NULL,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    qty         BIGINT NOT NULL,
    price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, pos)
);
