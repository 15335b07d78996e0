select
    film_id,
    title,
    rating::text as rating,
    rental_rate,
    length as length_minutes
from {{ source('pagila', 'film') }}
