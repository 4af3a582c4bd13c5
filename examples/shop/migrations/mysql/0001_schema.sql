-- The shop's tables (MariaDB 10.5 or newer: the shop uses INSERT ... RETURNING).
CREATE TABLE products (
    sku         VARCHAR(32) PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    price_cents BIGINT NOT NULL,
    description TEXT NOT NULL
) CHARACTER SET utf8mb4;

CREATE TABLE users (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(254) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    name          VARCHAR(200) NOT NULL
) CHARACTER SET utf8mb4;

CREATE TABLE addresses (
    user_id  BIGINT NOT NULL,
    pos      BIGINT NOT NULL,
    line     TEXT NOT NULL,
    PRIMARY KEY (user_id, pos),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) CHARACTER SET utf8mb4;

CREATE TABLE orders (
    id            BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id       BIGINT NOT NULL,
    total_cents   BIGINT NOT NULL,
    ship_to       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    INDEX orders_by_user (user_id, id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) CHARACTER SET utf8mb4;

CREATE TABLE order_lines (
    order_id    BIGINT NOT NULL,
    pos    BIGINT NOT NULL,
    sku         VARCHAR(32) NOT NULL,
    name        VARCHAR(200) NOT NULL,
    qty         BIGINT NOT NULL,
    price_cents BIGINT NOT NULL,
    PRIMARY KEY (order_id, pos),
    FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) CHARACTER SET utf8mb4;
