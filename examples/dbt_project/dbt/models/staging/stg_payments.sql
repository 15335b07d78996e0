select
    payment_id,
    rental_id,
    customer_id,
    amount,
    payment_date
from {{ source('pagila', 'payment') }}
