-- One row per film: rentals and revenue, with the rating's label from the seed.
select
    films.film_id,
    films.title,
    films.rating,
    labels.label as rating_label,
    count(distinct rentals.rental_id) as rentals,
    coalesce(sum(payments.amount), 0) as revenue
from {{ ref('stg_films') }} as films
left join {{ ref('rating_labels') }} as labels on labels.rating = films.rating
left join {{ ref('stg_rentals') }} as rentals on rentals.film_id = films.film_id
left join {{ ref('stg_payments') }} as payments on payments.rental_id = rentals.rental_id
group by films.film_id, films.title, films.rating, labels.label
