-- The payment service's own database (the postgres image runs this on its first start).
CREATE DATABASE switchboard_payment;
