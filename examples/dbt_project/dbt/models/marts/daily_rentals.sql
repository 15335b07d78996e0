-- Rentals per day, appended incrementally: a run only recomputes the days from the latest
-- one already loaded. Incremental models are altered in place, so views that other people
-- build on them (like reporting.busiest_days) survive dbt runs; a table or view model is
-- replaced with DROP ... CASCADE on every run, which drops such views.
{{ config(materialized='incremental', unique_key='rental_day') }}

select
    rental_date::date as rental_day,
    count(*) as rentals,
    count(distinct customer_id) as customers
from {{ ref('stg_rentals') }}
{% if is_incremental() %}
where rental_date >= (select max(rental_day) from {{ this }})
{% endif %}
group by rental_date::date
