import { describe, expect, it } from 'vitest'
import { badgeText, MESSAGES, relativeTime, resolveLocale, translate } from '../src/client/i18n'

describe('i18n', () => {
  it('picks the locale from the attribute, then the browser, then English', () => {
    expect(resolveLocale('ko', ['en-US'])).toBe('ko')
    expect(resolveLocale('ko-KR', [])).toBe('ko')
    expect(resolveLocale('EN_us', ['ko'])).toBe('en')
    expect(resolveLocale(null, ['fr-FR', 'ko-KR', 'en'])).toBe('ko')
    expect(resolveLocale('', ['de'])).toBe('en')
    expect(resolveLocale('xx', ['ko'])).toBe('ko')
  })
  it('has every English message in Korean', () => {
    expect(Object.keys(MESSAGES.ko).sort()).toEqual(Object.keys(MESSAGES.en).sort())
    for (const v of Object.values(MESSAGES.ko)) expect(v).not.toBe('')
  })
  it('interpolates', () => {
    expect(translate('en', 'bellLabelUnread', { count: 3 })).toBe('Notifications, 3 unread')
    expect(translate('ko', 'bellLabelUnread', { count: 3 })).toBe('알림, 읽지 않은 알림: 3')
    expect(translate('ko', 'newNotification', { title: '승인' })).toBe('새 알림: 승인')
    expect(translate('en', 'state.reconnecting')).toBe('Reconnecting…')
  })
  it('formats relative times in both languages', () => {
    const now = Date.parse('2026-01-01T12:00:00Z')
    expect(relativeTime('2026-01-01T11:59:50Z', 'en', now)).toBe('just now')
    expect(relativeTime('2026-01-01T11:59:50Z', 'ko', now)).toBe('방금')
    expect(relativeTime('2026-01-01T11:57:00Z', 'en', now)).toBe('3 minutes ago')
    expect(relativeTime('2026-01-01T11:57:00Z', 'ko', now)).toBe('3분 전')
    expect(relativeTime('2026-01-01T09:00:00Z', 'en', now)).toBe('3 hours ago')
    expect(relativeTime('2025-12-31T12:00:00Z', 'en', now)).toBe('yesterday')
    expect(relativeTime('2025-12-31T12:00:00Z', 'ko', now)).toBe('어제')
    expect(relativeTime('bogus', 'en', now)).toBe('')
  })
  it('caps the badge at 99+', () => {
    expect(badgeText(0)).toBe('')
    expect(badgeText(7)).toBe('7')
    expect(badgeText(99)).toBe('99')
    expect(badgeText(100)).toBe('99+')
  })
})
