import type { Locale } from '../client/i18n'

// The settings panel's texts live beside it, not in the client's message table, so that hosts
// that never open the panel do not load them (the panel is a lazily loaded chunk of the ES build).
const en = {
  'title': 'Settings',
  'back': 'Back to notifications',
  'muted': 'Muted types',
  'mutedHint': 'One type per line. marketing.* mutes every marketing type.',
  'tz': 'Time zone',
  'quietHours': 'Quiet hours',
  'quietOn': 'No pop-ups or e-mail during quiet hours',
  'quietHint': 'In your time zone. From 22:00 to 07:00 spans midnight.',
  'from': 'From',
  'to': 'To',
  'email': 'E-mail',
  'emailOn': 'E-mail me about notifications I have not read',
  'minPriority': 'Priority at least',
  'afterMin': 'After (minutes)',
  'priority.low': 'Low',
  'priority.normal': 'Normal',
  'priority.high': 'High',
  'digest': 'Daily digest',
  'digestOn': 'Send a daily e-mail listing unread notifications',
  'at': 'At',
  'save': 'Save',
  'saving': 'Saving…',
  'saved': 'Saved',
  'fixField': 'Please check this field:',
  'saveFailed': 'Could not save.',
  'loadFailed': 'Could not load your settings.',
  'invalidNumber': 'Enter a number of minutes (0 or more).',
}

/** A key of the settings panel's texts. */
export type SettingsKey = keyof typeof en

const ko: Record<SettingsKey, string> = {
  'title': '설정',
  'back': '알림 목록으로 돌아가기',
  'muted': '받지 않을 알림 유형',
  'mutedHint': '한 줄에 하나씩 입력합니다. marketing.* 는 모든 마케팅 유형을 끕니다.',
  'tz': '시간대',
  'quietHours': '방해 금지 시간',
  'quietOn': '방해 금지 시간에는 팝업과 이메일을 보내지 않음',
  'quietHint': '내 시간대 기준입니다. 22:00부터 07:00까지는 자정을 넘깁니다.',
  'from': '시작',
  'to': '종료',
  'email': '이메일',
  'emailOn': '읽지 않은 알림을 이메일로 받기',
  'minPriority': '최소 중요도',
  'afterMin': '대기 시간(분)',
  'priority.low': '낮음',
  'priority.normal': '보통',
  'priority.high': '높음',
  'digest': '일일 요약',
  'digestOn': '읽지 않은 알림 목록을 매일 이메일로 받기',
  'at': '보낼 시각',
  'save': '저장',
  'saving': '저장 중…',
  'saved': '저장했습니다',
  'fixField': '이 항목을 확인해 주세요:',
  'saveFailed': '저장하지 못했습니다.',
  'loadFailed': '설정을 불러오지 못했습니다.',
  'invalidNumber': '0 이상의 분 단위 숫자를 입력하세요.',
}

/** The settings panel's texts by locale. */
export const SETTINGS_MESSAGES: Record<Locale, Record<SettingsKey, string>> = { en, ko }
