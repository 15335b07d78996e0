select
    rental.rental_id,
    rental.rental_date,
    rental.customer_id,
    inventory.film_id,
    inventory.store_id
from {{ source('pagila', 'rental') }} as rental
join {{ source('pagila', 'inventory') }} as inventory using (inventory_id)
